//! Template source to nodes: `{{ ... }}` actions (with `{{-`/`-}}` trimming), `range`/`if`
//! blocks, and pipelines of commands.
use super::{parse_err, Arg, Command, Node, Pipeline, Result};

/// Parses a whole template.
pub(super) fn parse(src: &str) -> Result<Vec<Node>> {
    let pieces = split_actions(src)?;
    let mut pos = 0;
    let (nodes, end) = parse_nodes(&pieces, &mut pos)?;
    if let Some(word) = end {
        return Err(parse_err(format!("unexpected {{{{{word}}}}}")));
    }
    Ok(nodes)
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
    if let Some(d) = toks[*pos..].iter().position(|t| *t == Tok::Declare) {
        let vars: Option<Vec<String>> = toks[*pos..*pos + d]
            .iter()
            .filter(|t| **t != Tok::Comma)
            .map(|t| match t {
                Tok::Word(w) if w.starts_with('$') => Some(w.clone()),
                _ => None,
            })
            .collect();
        if let Some(vars) = vars.filter(|v| !v.is_empty()) {
            decl = vars;
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

