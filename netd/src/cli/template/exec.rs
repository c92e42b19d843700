//! Runs parsed nodes against a JSON value.
use serde_json::Value;

use super::{
    exec_err,
    fmt::type_name,
    funcs::{call, go_json, go_string, truthy, HEADER_NAMES},
    Arg, Command, Mode, Node, Pipeline, TemplateError,
};

/// Why a run failed: an error, or one at a field of the source (its offset, the field as
/// written and the message), which `Template` places by line and column.
pub(super) enum Failure {
    Plain(TemplateError),
    At { pos: usize, context: String, message: String },
}

impl From<TemplateError> for Failure {
    fn from(e: TemplateError) -> Self {
        Failure::Plain(e)
    }
}

type Result<T> = std::result::Result<T, Failure>;

pub(super) fn execute(nodes: &[Node], data: &Value, mode: Mode) -> Result<String> {
    let mut out = String::new();
    let mut scope = Scope { vars: vec![("$".into(), data.clone())], mode, root: data.clone() };
    exec_nodes(nodes, data, &mut scope, &mut out)?;
    Ok(out)
}

struct Scope<'a> {
    vars: Vec<(String, Value)>,
    mode: Mode<'a>,
    root: Value,
}

impl Scope<'_> {
    fn get(&self, name: &str) -> Result<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| exec_err(format!("undefined variable: {name}")).into())
    }

    /// A function call, as the mode has it: header functions return their first argument;
    /// a row's `{{json .}}` is its `MarshalJSON`, which escapes HTML characters.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value> {
        if self.mode.header && HEADER_NAMES.contains(&name) {
            return Ok(args.first().cloned().unwrap_or(Value::Null));
        }
        if name == "json" && self.mode.row_type.is_some() && args.len() == 1 && args[0] == self.root {
            return Ok(Value::from(go_json(&args[0], true)));
        }
        Ok(call(name, args)?)
    }
}

fn exec_nodes(nodes: &[Node], dot: &Value, scope: &mut Scope, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(pipe) => {
                let v = eval_pipeline(pipe, dot, scope)?;
                if pipe.decl.is_empty() {
                    out.push_str(&go_string(&v));
                } else {
                    scope.vars.push((pipe.decl[0].clone(), v));
                }
            }
            Node::If { pipe, body, else_body } | Node::With { pipe, body, else_body } => {
                let v = eval_pipeline(pipe, dot, scope)?;
                let depth = scope.vars.len();
                // `{{if $x := ...}}`: $x is the pipeline's value, in both branches.
                if let [name] = pipe.decl.as_slice() {
                    scope.vars.push((name.clone(), v.clone()));
                }
                if !truthy(&v) {
                    exec_nodes(else_body, dot, scope, out)?;
                } else if matches!(node, Node::With { .. }) {
                    exec_nodes(body, &v, scope, out)?;
                } else {
                    exec_nodes(body, dot, scope, out)?;
                }
                scope.vars.truncate(depth);
            }
            Node::Range { pipe, body, else_body } => {
                let v = eval_pipeline(pipe, dot, scope)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a.iter().enumerate().map(|(i, x)| (Value::from(i), x.clone())).collect(),
                    Value::Object(m) => {
                        let mut keys: Vec<&String> = m.keys().collect();
                        keys.sort();
                        keys.into_iter().map(|k| (Value::from(k.clone()), m[k].clone())).collect()
                    }
                    Value::Null => vec![],
                    other => return Err(exec_err(format!("range can't iterate over {}", go_string(other))).into()),
                };
                if items.is_empty() {
                    exec_nodes(else_body, dot, scope, out)?;
                }
                for (k, item) in items {
                    let depth = scope.vars.len();
                    match pipe.decl.as_slice() {
                        [v] => scope.vars.push((v.clone(), item.clone())),
                        [kname, v] => {
                            scope.vars.push((kname.clone(), k));
                            scope.vars.push((v.clone(), item.clone()));
                        }
                        _ => {}
                    }
                    exec_nodes(body, &item, scope, out)?;
                    scope.vars.truncate(depth);
                }
            }
        }
    }
    Ok(())
}

/// A pipeline's value: each command gets the previous one's value as its last argument.
fn eval_pipeline(pipe: &Pipeline, dot: &Value, scope: &Scope) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for cmd in &pipe.cmds {
        prev = Some(eval_command(cmd, dot, scope, prev)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_command(cmd: &Command, dot: &Value, scope: &Scope, piped: Option<Value>) -> Result<Value> {
    match &cmd.args[0] {
        Arg::Func(name) if name == "and" || name == "or" => {
            // Go's `and`/`or` stop evaluating at the first argument that decides the result
            // and return that argument: `and x y` is "if x then y else x".
            let decisive = name == "or";
            let mut last = None;
            for a in &cmd.args[1..] {
                let v = eval_arg(a, dot, scope)?;
                if truthy(&v) == decisive {
                    return Ok(v);
                }
                last = Some(v);
            }
            match piped.or(last) {
                Some(v) => Ok(v),
                None => scope.call(name, &[]),
            }
        }
        Arg::Func(name) => {
            let mut args = Vec::new();
            for a in &cmd.args[1..] {
                args.push(eval_arg(a, dot, scope)?);
            }
            args.extend(piped);
            scope.call(name, &args)
        }
        // A row's `Label` method: `{{.Label "com.example.key"}}` is that label's value (""
        // when absent), headed by the key itself.
        Arg::Field(path, _) if path == &["Label"] && (scope.mode.row_type.is_some() || scope.mode.header) => {
            let key = match (&cmd.args[1..], piped) {
                ([arg], None) => eval_arg(arg, dot, scope)?,
                ([], Some(v)) => v,
                _ => return Err(exec_err("wrong number of args for Label: want 1").into()),
            };
            let key = go_string(&key);
            if scope.mode.header {
                return Ok(Value::from(key));
            }
            let labels = dot.get("Labels").and_then(Value::as_str).unwrap_or_default();
            let value = labels.split(',').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v));
            Ok(Value::from(value.unwrap_or_default()))
        }
        first => {
            if cmd.args.len() > 1 || piped.is_some() {
                return Err(exec_err(format!("can't give argument to non-function {first:?}")).into());
            }
            eval_arg(first, dot, scope)
        }
    }
}

fn eval_arg(arg: &Arg, dot: &Value, scope: &Scope) -> Result<Value> {
    match arg {
        Arg::Field(path, pos) => field(dot, path, scope.mode).map_err(|message| Failure::At {
            pos: *pos,
            context: format!(".{}", path.join(".")),
            message,
        }),
        Arg::Var(name, path) => field(&scope.get(name)?, path, scope.mode).map_err(|m| exec_err(m).into()),
        Arg::Literal(v) => Ok(v.clone()),
        Arg::Func(name) => scope.call(name, &[]),
        Arg::Sub(p, path) => field(&eval_pipeline(p, dot, scope)?, path, scope.mode).map_err(|m| exec_err(m).into()),
    }
}

/// Docker's types are Go structs whose fields are exported names (`IPAM`, `Config`), and maps
/// (`Labels`, `Options`, `Containers`, `Networks`, `Ports`) whose keys are data: an object is
/// taken for a struct when it has keys and all of them are such names.
pub(super) fn is_struct(m: &serde_json::Map<String, Value>) -> bool {
    !m.is_empty()
        && m.keys().all(|k| {
            k.starts_with(|c: char| c.is_ascii_uppercase()) && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `.A.B` of `v`. A key a map does not have is nothing (`<no value>`); a field a struct does
/// not have is an error, worded as Docker's: on a list row its Go type's (`can't evaluate
/// field X in type *formatter.ContainerContext`), on an inspected object the one of its
/// fallback to the raw JSON (`map has no entry for key "X"`).
fn field(v: &Value, path: &[String], mode: Mode) -> std::result::Result<Value, String> {
    let mut cur = v.clone();
    for (i, key) in path.iter().enumerate() {
        cur = match &cur {
            Value::Object(m) => match m.get(key) {
                Some(found) => found.clone(),
                None if i == 0 && mode.header => Value::Null,
                None if i == 0 && mode.row_type.is_some() => {
                    return Err(format!("can't evaluate field {key} in type {}", mode.row_type.unwrap_or_default()));
                }
                None if is_struct(m) => return Err(format!("map has no entry for key {key:?}")),
                None => Value::Null,
            },
            Value::Null if i > 0 => Value::Null,
            other => {
                let ty = if mode.row_type.is_some() { type_name(other) } else { "interface {}" };
                return Err(format!("can't evaluate field {key} in type {ty}"));
            }
        };
    }
    Ok(cur)
}
