//! Runs parsed nodes against a JSON value.
use serde_json::Value;

use super::{
    exec_err,
    fmt::type_name,
    funcs::{call, go_string, truthy},
    Arg, Command, Node, Pipeline, Result,
};

pub(super) fn execute(nodes: &[Node], data: &Value) -> Result<String> {
    let mut out = String::new();
    let mut scope = Scope { vars: vec![("$".into(), data.clone())] };
    exec_nodes(nodes, data, &mut scope, &mut out)?;
    Ok(out)
}

struct Scope {
    vars: Vec<(String, Value)>,
}

impl Scope {
    fn get(&self, name: &str) -> Result<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| exec_err(format!("undefined variable: {name}")))
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
                    other => return Err(exec_err(format!("range can't iterate over {}", go_string(other)))),
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
                None => call(name, &[]),
            }
        }
        Arg::Func(name) => {
            let mut args = Vec::new();
            for a in &cmd.args[1..] {
                args.push(eval_arg(a, dot, scope)?);
            }
            args.extend(piped);
            call(name, &args)
        }
        first => {
            if cmd.args.len() > 1 || piped.is_some() {
                return Err(exec_err(format!("can't give argument to non-function {first:?}")));
            }
            eval_arg(first, dot, scope)
        }
    }
}

fn eval_arg(arg: &Arg, dot: &Value, scope: &Scope) -> Result<Value> {
    match arg {
        Arg::Field(path) => field(dot, path),
        Arg::Var(name, path) => field(&scope.get(name)?, path),
        Arg::Literal(v) => Ok(v.clone()),
        Arg::Func(name) => call(name, &[]),
        Arg::Sub(p, path) => field(&eval_pipeline(p, dot, scope)?, path),
    }
}

fn field(v: &Value, path: &[String]) -> Result<Value> {
    let mut cur = v.clone();
    for (i, key) in path.iter().enumerate() {
        cur = match &cur {
            Value::Object(m) => m.get(key).cloned().unwrap_or(Value::Null),
            Value::Null if i > 0 => Value::Null,
            other => {
                return Err(exec_err(format!("can't evaluate field {key} in type {}", type_name(other))));
            }
        };
    }
    Ok(cur)
}
