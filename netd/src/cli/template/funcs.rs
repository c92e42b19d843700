//! Docker's template functions (and text/template's `not`, `eq`, `ne`), and how Go prints
//! values.
use std::fmt::Write;

use serde_json::Value;

use super::{exec_err, Result};

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
            Value::from(serde_json::to_string(&args[0]).map_err(|e| exec_err(e.to_string()))?)
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
                    (Value::Object(m), k) => m.get(&go_string(k)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .ok_or_else(|| exec_err(format!("index out of range: {n}")))?,
                    (other, _) => return Err(exec_err(format!("can't index item of type {}", go_type(other)))),
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
                other => return Err(exec_err(format!("len of type {}", go_type(other)))),
            })
        }
        "print" => Value::from(go_print(args)),
        "println" => Value::from(args.iter().map(go_string).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            if args.is_empty() {
                return Err(exec_err("wrong number of args for printf"));
            }
            Value::from(printf(&s(0), &args[1..]))
        }
        "not" => {
            want(1)?;
            Value::from(!truthy(&args[0]))
        }
        "eq" => {
            want(2)?;
            Value::from(args[0] == args[1])
        }
        "ne" => {
            want(2)?;
            Value::from(args[0] != args[1])
        }
        other => return Err(exec_err(format!("function \"{other}\" not defined"))),
    })
}

/// Go's `fmt.Sprint`: spaces only between operands that are not both strings.
fn go_print(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !(a.is_string() && args[i - 1].is_string()) {
            out.push(' ');
        }
        out.push_str(&go_string(a));
    }
    out
}

fn printf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('q') => {
                let _ = write!(out, "{:?}", args.next().map(go_string).unwrap_or_default());
            }
            Some(_) => out.push_str(&args.next().map(go_string).unwrap_or_else(|| "%!v(MISSING)".into())),
            None => out.push('%'),
        }
    }
    out
}

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

pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// How Go's template prints a value.
pub(super) fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_inner).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys.iter().map(|k| format!("{k}:{}", go_inner(&m[*k]))).collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Nested values: nil prints as `<nil>` inside lists and maps.
fn go_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_string(other),
    }
}

