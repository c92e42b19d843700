//! Docker's template functions and text/template's built-in ones, and how a template prints
//! a value.
use serde_json::Value;

use super::{compare, exec_err, fmt, Result};

/// The functions a template may name: text/template's and Docker's.
pub(super) const NAMES: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "print", "printf", "println", "json",
    "split", "join", "lower", "upper", "title", "truncate", "pad",
];

/// Docker's `HeaderFunctions`, which return their first argument in a table's header row.
pub(super) const HEADER_NAMES: &[&str] = &["json", "split", "join", "title", "lower", "upper", "truncate", "pad"];

/// Go's `encoding/json` text of a value; `escape_html` writes `<`, `>` and `&` as `\u003c`,
/// `\u003e` and `\u0026` (json.Marshal's default; Docker's `json` function turns it off).
/// U+2028 and U+2029 are always escaped.
pub(super) fn go_json(v: &Value, escape_html: bool) -> String {
    let text = serde_json::to_string(v).expect("JSON values serialize");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' if escape_html => out.push_str("\\u003c"),
            '>' if escape_html => out.push_str("\\u003e"),
            '&' if escape_html => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn call(name: &str, args: &[Value]) -> Result<Value> {
    let want = |n: usize| -> Result<()> {
        if args.len() == n {
            Ok(())
        } else {
            Err(exec_err(format!("wrong number of args for {name}: want {n} got {}", args.len())))
        }
    };
    let s = |i: usize| go_string(&args[i]);
    Ok(match name {
        "json" => {
            want(1)?;
            Value::from(go_json(&args[0], false))
        }
        // Docker's: the first N characters; spaces on both sides.
        "truncate" => {
            want(2)?;
            let n = int_arg(&args[1])?;
            Value::from(s(0).chars().take(n).collect::<String>())
        }
        "pad" => {
            want(3)?;
            let (left, right) = (int_arg(&args[1])?, int_arg(&args[2])?);
            Value::from(format!("{}{}{}", " ".repeat(left), s(0), " ".repeat(right)))
        }
        "split" => {
            want(2)?;
            Value::from(s(0).split(s(1).as_str()).map(Value::from).collect::<Vec<_>>())
        }
        "join" => {
            want(2)?;
            let items: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(go_string).collect(),
                other => vec![go_string(other)],
            };
            Value::from(items.join(&s(1)))
        }
        "index" => {
            if args.is_empty() {
                return Err(exec_err("wrong number of args for index"));
            }
            let mut cur = args[0].clone();
            for key in &args[1..] {
                cur = match (&cur, key) {
                    // A key that is not there: the zero value of the map's element type,
                    // "" for Docker's maps of strings (Labels, Options).
                    (Value::Object(m), k) => m.get(&go_string(k)).cloned().unwrap_or_else(|| {
                        if m.values().all(Value::is_string) {
                            Value::from("")
                        } else {
                            Value::Null
                        }
                    }),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .ok_or_else(|| exec_err(format!("index out of range: {n}")))?,
                    (other, _) => return Err(exec_err(format!("can't index item of type {}", fmt::type_name(other)))),
                };
            }
            cur
        }
        "lower" => {
            want(1)?;
            Value::from(s(0).to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::from(s(0).to_uppercase())
        }
        "title" => {
            want(1)?;
            let mut out = String::new();
            let mut start = true;
            for c in s(0).chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::from(out)
        }
        "len" => {
            want(1)?;
            Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(t) => t.len(),
                other => return Err(exec_err(format!("len of type {}", fmt::type_name(other)))),
            })
        }
        "print" => Value::from(fmt::sprint(args)),
        "println" => Value::from(fmt::sprintln(args)),
        "printf" => match args.split_first() {
            Some((Value::String(format), operands)) => {
                Value::from(fmt::sprintf(format, operands).map_err(|e| exec_err(format!("error calling printf: {e}")))?)
            }
            Some((other, _)) => {
                return Err(exec_err(format!("wrong type for value; expected string; got {}", fmt::type_name(other))));
            }
            None => return Err(exec_err("wrong number of args for printf: want at least 1 got 0")),
        },
        // What reaches here was evaluated already; commands short-circuit `and`/`or` in exec.
        "and" | "or" => {
            let Some(last) = args.last() else {
                return Err(exec_err(format!("wrong number of args for {name}: want at least 1 got 0")));
            };
            let decides = |v: &&Value| truthy(v) == (name == "or");
            args.iter().find(decides).unwrap_or(last).clone()
        }
        "not" => {
            want(1)?;
            Value::from(!truthy(&args[0]))
        }
        "eq" => {
            let Some((first, others)) = args.split_first() else {
                return Err(exec_err("wrong number of args for eq: want at least 1 got 0"));
            };
            Value::from(compared(name, compare::eq(first, others))?)
        }
        "ne" => {
            want(2)?;
            Value::from(!compared(name, compare::eq(&args[0], &args[1..]))?)
        }
        "lt" => {
            want(2)?;
            Value::from(compared(name, compare::lt(&args[0], &args[1]))?)
        }
        "le" => {
            want(2)?;
            Value::from(compared(name, compare::le(&args[0], &args[1]))?)
        }
        "gt" => {
            want(2)?;
            Value::from(!compared(name, compare::le(&args[0], &args[1]))?)
        }
        "ge" => {
            want(2)?;
            Value::from(!compared(name, compare::lt(&args[0], &args[1]))?)
        }
        other => return Err(exec_err(format!("function \"{other}\" not defined"))),
    })
}

/// A count argument (`truncate`, `pad`): a non-negative int.
fn int_arg(v: &Value) -> Result<usize> {
    v.as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| exec_err(format!("wrong type for value; expected int; got {}", fmt::type_name(v))))
}

/// A comparison's result, its error worded as Go reports a function's error.
fn compared(name: &str, result: std::result::Result<bool, compare::CompareError>) -> Result<bool> {
    result.map_err(|e| exec_err(format!("error calling {name}: {e}")))
}

/// Go's truth for `if`, `with`, `and`, `or` and `not`: false, 0, "", nil and empty lists and
/// maps are false.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How `{{...}}` prints a value: Go's `%v`, except that nothing (a missing field, null)
/// prints as `<no value>`.
pub(super) fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        other => fmt::sprint(std::slice::from_ref(other)),
    }
}
