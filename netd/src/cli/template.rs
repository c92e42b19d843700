//! The part of Go's text/template that Docker users put in `--format`: field paths
//! (`.NetworkSettings.Networks`), `range`/`if`/`else`/`end`, variables (`$k, $v :=`),
//! pipelines (`|`), string literals and Docker's functions (`json`, `split`, `join`, `index`,
//! `lower`, `upper`, `title`, `len`, `println`, `print`, `printf` with %s/%v/%d/%q). Values
//! print the way Go prints them: `[a b]` for lists, `map[k:v]` for objects.
use std::fmt::Write;

use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum TemplateError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template: executing: {0}")]
    Exec(String),
}

type Result<T> = std::result::Result<T, TemplateError>;

fn parse_err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Parse(msg.into())
}

fn exec_err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Exec(msg.into())
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B` (empty path = `.`).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone is the root).
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Func(String),
    /// `( pipeline )`, optionally followed by a field chain: `(index .M "k").Field`.
    Sub(Pipeline, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    Range { pipe: Pipeline, body: Vec<Node>, else_body: Vec<Node> },
    If { pipe: Pipeline, body: Vec<Node>, else_body: Vec<Node> },
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self> {
        let tokens = split_actions(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&tokens, &mut pos)?;
        if let Some(word) = end {
            return Err(parse_err(format!("unexpected {{{{{word}}}}}")));
        }
        Ok(Self { nodes })
    }

    pub fn execute(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        let mut scope = Scope { vars: vec![("$".into(), data.clone())] };
        exec_nodes(&self.nodes, data, &mut scope, &mut out)?;
        Ok(out)
    }
}

/// Renders `src` against `data` in one go.
#[cfg(test)]
pub fn render(src: &str, data: &Value) -> Result<String> {
    Template::parse(src)?.execute(data)
}

enum Piece {
    Text(String),
    Action(String),
}

/// Splits the source into text and `{{ ... }}` actions, applying `{{-` / `-}}` trimming.
fn split_actions(src: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let after = &rest[start + 2..];
        let (trim_left, after) = match after.strip_prefix("- ") {
            Some(a) => (true, a),
            None => (false, after),
        };
        if trim_left {
            text = text.trim_end().to_string();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        let end = find_action_end(after).ok_or_else(|| parse_err("unclosed action"))?;
        let mut inner = &after[..end];
        trim_next = false;
        if let Some(i) = inner.strip_suffix(" -") {
            inner = i;
            trim_next = true;
        }
        pieces.push(Piece::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
    Ok(pieces)
}

/// The `}}` that closes an action, skipping string literals.
fn find_action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, b'"') | (None, b'`') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses nodes until `end` or `else` (returned) or the end of input.
fn parse_nodes(pieces: &[Piece], pos: &mut usize) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while *pos < pieces.len() {
        let piece = &pieces[*pos];
        *pos += 1;
        match piece {
            Piece::Text(t) => nodes.push(Node::Text(t.clone())),
            Piece::Action(a) => {
                let (word, rest) = match a.split_once(char::is_whitespace) {
                    Some((w, r)) => (w, r.trim()),
                    None => (a.as_str(), ""),
                };
                match word {
                    "end" | "else" => return Ok((nodes, Some(word.to_string()))),
                    "range" | "if" => {
                        let pipe = parse_pipeline(rest)?;
                        let (body, end) = parse_nodes(pieces, pos)?;
                        let else_body = match end.as_deref() {
                            Some("end") => vec![],
                            Some("else") => match parse_nodes(pieces, pos)? {
                                (b, Some(e)) if e == "end" => b,
                                _ => return Err(parse_err(format!("missing {{{{end}}}} for {word}"))),
                            },
                            _ => return Err(parse_err(format!("missing {{{{end}}}} for {word}"))),
                        };
                        nodes.push(if word == "range" {
                            Node::Range { pipe, body, else_body }
                        } else {
                            Node::If { pipe, body, else_body }
                        });
                    }
                    "/*" => {}
                    _ if a.starts_with("/*") => {}
                    _ => nodes.push(Node::Action(parse_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, None))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Pipe,
    Open,
    Close,
    Comma,
    Declare,
}

fn lex(s: &str) -> Result<Vec<Tok>> {
    let mut toks = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '"' => {
                let mut out = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(parse_err("unterminated quoted string")),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            out.push(match chars.get(i) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some(&c) => c,
                                None => return Err(parse_err("unterminated quoted string")),
                            });
                        }
                        Some(&c) => out.push(c),
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(out));
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| parse_err("unterminated raw string"))?;
                toks.push(Tok::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"|(),\"`".contains(chars[i]) {
                    if chars[i] == ':' && chars.get(i + 1) == Some(&'=') {
                        break;
                    }
                    i += 1;
                }
                toks.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(toks)
}

fn parse_pipeline(s: &str) -> Result<Pipeline> {
    let toks = lex(s)?;
    let mut pos = 0;
    let pipe = parse_pipe_toks(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(parse_err(format!("unexpected {:?} in {s:?}", toks[pos])));
    }
    Ok(pipe)
}

fn parse_pipe_toks(toks: &[Tok], pos: &mut usize) -> Result<Pipeline> {
    // Declarations: `$v :=` or `$k, $v :=`.
    let mut decl = Vec::new();
    let declares = toks[*pos..].iter().position(|t| *t == Tok::Declare);
    if let Some(d) = declares {
        let head = &toks[*pos..*pos + d];
        let vars: Vec<&Tok> = head.iter().filter(|t| **t != Tok::Comma).collect();
        if !vars.is_empty() && vars.iter().all(|t| matches!(t, Tok::Word(w) if w.starts_with('$'))) {
            decl = vars.iter().map(|t| if let Tok::Word(w) = t { w.clone() } else { unreachable!() }).collect();
            *pos += d + 1;
        }
    }
    let mut cmds = vec![Command { args: vec![] }];
    while *pos < toks.len() {
        match &toks[*pos] {
            Tok::Close => break,
            Tok::Pipe => cmds.push(Command { args: vec![] }),
            Tok::Open => {
                *pos += 1;
                let sub = parse_pipe_toks(toks, pos)?;
                if toks.get(*pos) != Some(&Tok::Close) {
                    return Err(parse_err("unclosed left paren"));
                }
                let path = match toks.get(*pos + 1) {
                    Some(Tok::Word(w)) if w.starts_with('.') && w.len() > 1 => {
                        *pos += 1;
                        w[1..].split('.').map(str::to_string).collect()
                    }
                    _ => vec![],
                };
                cmds.last_mut().unwrap().args.push(Arg::Sub(sub, path));
            }
            Tok::Str(s) => cmds.last_mut().unwrap().args.push(Arg::Str(s.clone())),
            Tok::Word(w) => cmds.last_mut().unwrap().args.push(parse_word(w)?),
            Tok::Comma | Tok::Declare => return Err(parse_err("unexpected punctuation")),
        }
        *pos += 1;
    }
    if cmds.iter().any(|c| c.args.is_empty()) {
        return Err(parse_err("missing value for command"));
    }
    Ok(Pipeline { decl, cmds })
}

fn parse_word(w: &str) -> Result<Arg> {
    if w == "." {
        return Ok(Arg::Field(vec![]));
    }
    if let Some(path) = w.strip_prefix('.') {
        return Ok(Arg::Field(path.split('.').map(str::to_string).collect()));
    }
    if w.starts_with('$') {
        let mut parts = w.split('.');
        let name = parts.next().unwrap().to_string();
        return Ok(Arg::Var(name, parts.map(str::to_string).collect()));
    }
    if let Ok(n) = w.parse::<i64>() {
        return Ok(Arg::Int(n));
    }
    if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(Arg::Func(w.to_string()));
    }
    Err(parse_err(format!("unexpected {w:?}")))
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
            Node::If { pipe, body, else_body } => {
                let v = eval_pipeline(pipe, dot, scope)?;
                let depth = scope.vars.len();
                let branch = if truthy(&v) { body } else { else_body };
                exec_nodes(branch, dot, scope, out)?;
                scope.vars.truncate(depth);
            }
            Node::Range { pipe, body, else_body } => {
                let v = eval_cmds(&pipe.cmds, dot, scope)?;
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

fn eval_pipeline(pipe: &Pipeline, dot: &Value, scope: &mut Scope) -> Result<Value> {
    eval_cmds(&pipe.cmds, dot, scope)
}

fn eval_cmds(cmds: &[Command], dot: &Value, scope: &mut Scope) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for cmd in cmds {
        prev = Some(eval_command(cmd, dot, scope, prev)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_command(cmd: &Command, dot: &Value, scope: &mut Scope, piped: Option<Value>) -> Result<Value> {
    match &cmd.args[0] {
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

fn eval_arg(arg: &Arg, dot: &Value, scope: &mut Scope) -> Result<Value> {
    match arg {
        Arg::Field(path) => field(dot, path),
        Arg::Var(name, path) => field(&scope.get(name)?, path),
        Arg::Str(s) => Ok(Value::from(s.clone())),
        Arg::Int(n) => Ok(Value::from(*n)),
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
                return Err(exec_err(format!("can't evaluate field {key} in type {}", go_type(other))));
            }
        };
    }
    Ok(cur)
}

fn call(name: &str, args: &[Value]) -> Result<Value> {
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

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn go_type(v: &Value) -> &'static str {
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
pub fn go_string(v: &Value) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Value {
        json!({
            "Name": "/web",
            "Config": { "Cmd": ["sleep", "60"] },
            "NetworkSettings": {
                "IPAddress": "172.17.0.2",
                "Networks": {
                    "bridge": { "IPAddress": "172.17.0.2", "Gateway": "172.17.0.1" },
                    "my_bridge": { "IPAddress": "172.19.0.3", "Gateway": "172.19.0.1" }
                }
            }
        })
    }

    #[test]
    fn fields_and_json() {
        let c = container();
        assert_eq!(render("{{.Name}}", &c).unwrap(), "/web");
        assert_eq!(render("{{.NetworkSettings.IPAddress}}", &c).unwrap(), "172.17.0.2");
        assert_eq!(
            render("{{json .NetworkSettings.Networks.bridge}}", &c).unwrap(),
            r#"{"IPAddress":"172.17.0.2","Gateway":"172.17.0.1"}"#
        );
        assert_eq!(render("{{.Missing}}", &c).unwrap(), "<no value>");
        assert_eq!(render("{{.Config.Cmd}}", &c).unwrap(), "[sleep 60]");
    }

    #[test]
    fn the_seeds_range_split_format() {
        // `docker inspect --format='{{range .NetworkSettings.Networks}}{{split .IPAddress ","}}{{end}}' web`
        let out = render(r#"{{range .NetworkSettings.Networks}}{{split .IPAddress ","}}{{end}}"#, &container()).unwrap();
        assert_eq!(out, "[172.17.0.2][172.19.0.3]");
    }

    #[test]
    fn range_with_variables_index_and_pipes() {
        let c = container();
        let out = render("{{range $name, $net := .NetworkSettings.Networks}}{{$name}}={{$net.IPAddress}} {{end}}", &c);
        assert_eq!(out.unwrap(), "bridge=172.17.0.2 my_bridge=172.19.0.3 ");
        assert_eq!(render(r#"{{(index .NetworkSettings.Networks "my_bridge").IPAddress}}"#, &c).unwrap(), "172.19.0.3");
        assert_eq!(render(r#"{{index .NetworkSettings.Networks "my_bridge" "Gateway"}}"#, &c).unwrap(), "172.19.0.1");
        assert_eq!(render("{{.Name | upper}}", &c).unwrap(), "/WEB");
        assert_eq!(render(r#"{{join .Config.Cmd " "}}"#, &c).unwrap(), "sleep 60");
        assert_eq!(render("{{len .NetworkSettings.Networks}}", &c).unwrap(), "2");
        assert_eq!(render(r#"{{printf "%s/%d" .Name 16}}"#, &c).unwrap(), "/web/16");
        assert_eq!(render("{{range .Nothing}}x{{else}}none{{end}}", &c).unwrap(), "none");
        assert_eq!(render("{{if .NetworkSettings.IPAddress}}yes{{else}}no{{end}}", &c).unwrap(), "yes");
        assert_eq!(render("a {{- .Name -}} b", &c).unwrap(), "a/webb");
        assert_eq!(render("{{range .Config.Cmd}}{{println .}}{{end}}", &c).unwrap(), "sleep\n60\n");
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(render("{{.Name", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{range .A}}", &json!({})), Err(TemplateError::Parse(_))));
        assert!(matches!(render("{{nosuch .A}}", &json!({})), Err(TemplateError::Exec(_))));
        assert!(matches!(render("{{.A.B}}", &json!({"A": "x"})), Err(TemplateError::Exec(_))));
    }
}
