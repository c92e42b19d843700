//! Template source to nodes: `{{ ... }}` actions (with `{{-`/`-}}` trimming and `{{/* */}}`
//! comments), `range`/`if`/`with` blocks with their `else` branches, and pipelines of commands.
use serde_json::Value;

use super::{parse_err, Arg, Command, Node, Pipeline, Result};

/// Parses a whole template.
pub(super) fn parse(src: &str) -> Result<Vec<Node>> {
    let pieces = split_actions(src)?;
    let mut pos = 0;
    match parse_nodes(&pieces, &mut pos)? {
        (nodes, Terminator::Eof) => Ok(nodes),
        (_, Terminator::End) => Err(parse_err("unexpected {{end}}")),
        (_, Terminator::Else | Terminator::ElseChain(..)) => Err(parse_err("unexpected {{else}}")),
    }
}

enum Piece {
    Text(String),
    /// An action's text and its byte offset in the source.
    Action(String, usize),
}

/// The white space that `{{- ` and ` -}}` trim, and that must follow or precede their dash.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits the source into text and `{{ ... }}` actions, applying `{{- ` / ` -}}` trimming and
/// dropping comments.
fn split_actions(src: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let after = &rest[start + 2..];
        let (trim_left, after) = match after.strip_prefix('-') {
            Some(a) if a.starts_with(is_space) => (true, a),
            _ => (false, after),
        };
        if trim_left {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        let inner_start = after.trim_start_matches(is_space);
        let end = if inner_start.starts_with("/*") {
            // A comment is a whole action: `{{/* ... */}}`, with optional trim markers.
            let close = inner_start.find("*/").ok_or_else(|| parse_err("unclosed comment"))?;
            let tail = &inner_start[close + 2..];
            let tail_len = tail.find("}}").filter(|&i| matches!(tail[..i].trim_start_matches(is_space), "" | "-"));
            let tail_len = tail_len.ok_or_else(|| parse_err("comment ends before closing delimiter"))?;
            after.len() - tail.len() + tail_len
        } else {
            find_action_end(after).ok_or_else(|| parse_err("unclosed action"))?
        };
        let mut inner = &after[..end];
        trim_next = false;
        if let Some(i) = inner.strip_suffix('-').filter(|i| i.ends_with(is_space)) {
            inner = i;
            trim_next = true;
        }
        let inner = inner.trim_matches(is_space);
        if !inner.starts_with("/*") {
            pieces.push(Piece::Action(inner.to_string(), offset_in(src, inner)));
        }
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start_matches(is_space) } else { rest };
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
    Ok(pieces)
}

/// The byte offset of `part` in `whole`, of which it is usually a slice; the end of `whole`
/// for a part that is not (an empty `""` from elsewhere: found by the template fuzz target).
fn offset_in(whole: &str, part: &str) -> usize {
    let (start, at) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    if (start..=start + whole.len()).contains(&at) {
        at - start
    } else {
        whole.len()
    }
}

/// The `}}` that closes an action, skipping string literals.
fn find_action_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            // Backslash escapes only in "..." strings; `raw` strings have none.
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, b'"') | (None, b'`') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// How a list of nodes ended.
enum Terminator {
    /// The end of the template.
    Eof,
    /// `{{end}}`.
    End,
    /// `{{else}}`.
    Else,
    /// `{{else if ...}}` or `{{else with ...}}`: the keyword, the rest of the action and its
    /// offset in the source.
    ElseChain(String, String, usize),
}

/// The first word of an action and the rest.
fn split_word(action: &str) -> (&str, &str) {
    match action.split_once(is_space) {
        Some((word, rest)) => (word, rest.trim_matches(is_space)),
        None => (action, ""),
    }
}

/// Parses nodes until `{{end}}`, an `{{else ...}}` or the end of input.
fn parse_nodes(pieces: &[Piece], pos: &mut usize) -> Result<(Vec<Node>, Terminator)> {
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.get(*pos) {
        *pos += 1;
        let action = match piece {
            Piece::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                continue;
            }
            Piece::Action(a, at) => (a, *at),
        };
        let (action, at) = action;
        let offset = |part: &str| at + offset_in(action, part);
        let (word, rest) = split_word(action);
        match word {
            "end" if rest.is_empty() => return Ok((nodes, Terminator::End)),
            "end" => return Err(parse_err(format!("unexpected {rest:?} in {{{{end}}}}"))),
            "else" if rest.is_empty() => return Ok((nodes, Terminator::Else)),
            "else" => {
                let (keyword, rest) = split_word(rest);
                return Ok((nodes, Terminator::ElseChain(keyword.to_string(), rest.to_string(), offset(rest))));
            }
            "range" | "if" | "with" => nodes.push(parse_block(word, rest, offset(rest), pieces, pos)?),
            "template" | "define" | "block" | "break" | "continue" => {
                return Err(parse_err(format!("{{{{{word}}}}} is not supported")));
            }
            _ => {
                let pipe = parse_pipeline(action, at)?;
                if pipe.decl.len() > 1 {
                    return Err(parse_err(format!("too many declarations in {action:?}")));
                }
                nodes.push(Node::Action(pipe));
            }
        }
    }
    Ok((nodes, Terminator::Eof))
}

/// A `range`/`if`/`with` block, up to and including its `{{end}}`.
fn parse_block(keyword: &str, rest: &str, at: usize, pieces: &[Piece], pos: &mut usize) -> Result<Node> {
    let pipe = parse_pipeline(rest, at)?;
    // `range $i, $v :=` declares two variables; `if`/`with` at most one.
    let max_declarations = if keyword == "range" { 2 } else { 1 };
    if pipe.decl.len() > max_declarations {
        return Err(parse_err(format!("too many declarations in {{{{{keyword}}}}}")));
    }
    let missing_end = || parse_err(format!("missing {{{{end}}}} for {{{{{keyword}}}}}"));
    let (body, end) = parse_nodes(pieces, pos)?;
    let else_body = match end {
        Terminator::Eof => return Err(missing_end()),
        Terminator::End => vec![],
        Terminator::Else => match parse_nodes(pieces, pos)? {
            (else_body, Terminator::End) => else_body,
            (_, Terminator::Eof) => return Err(missing_end()),
            (_, Terminator::Else | Terminator::ElseChain(..)) => {
                return Err(parse_err(format!("expected {{{{end}}}} after {{{{else}}}} in {{{{{keyword}}}}}")));
            }
        },
        // `{{if A}}a{{else if B}}b{{end}}` is `{{if A}}a{{else}}{{if B}}b{{end}}{{end}}` written
        // with one `{{end}}`: the nested block consumes it. Go allows `else if` in `if` and
        // `else with` in `with` only.
        Terminator::ElseChain(chained, rest, at) if chained == keyword && keyword != "range" => {
            vec![parse_block(&chained, &rest, at, pieces, pos)?]
        }
        Terminator::ElseChain(chained, ..) => {
            return Err(parse_err(format!("{{{{else {chained}}}}} is not allowed in {{{{{keyword}}}}}")));
        }
    };
    Ok(match keyword {
        "range" => Node::Range { pipe, body, else_body },
        "if" => Node::If { pipe, body, else_body },
        _ => Node::With { pipe, body, else_body },
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word and its byte offset in the source.
    Word(String, usize),
    Str(String),
    Pipe,
    Open,
    Close,
    Comma,
    Declare,
}

fn lex(s: &str, at: usize) -> Result<Vec<Tok>> {
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
                let (text, next) = quoted_string(&chars, i)?;
                toks.push(Tok::Str(text));
                i = next;
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
                let offset = at + chars[..start].iter().map(|c| c.len_utf8()).sum::<usize>();
                toks.push(Tok::Word(chars[start..i].iter().collect(), offset));
            }
        }
    }
    Ok(toks)
}

/// The `"..."` literal at `chars[start]`, with Go's escapes (`\n`, `\x41`, `\u263a`, `\101`,
/// ...), and the index after it.
fn quoted_string(chars: &[char], start: usize) -> Result<(String, usize)> {
    let unterminated = || parse_err("unterminated quoted string");
    // Bytes, because `\xNN` and octal escapes are bytes of the UTF-8 text.
    let mut bytes = Vec::new();
    let push = |bytes: &mut Vec<u8>, c: char| bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    let mut i = start + 1;
    loop {
        let c = *chars.get(i).ok_or_else(unterminated)?;
        i += 1;
        match c {
            '"' => break,
            '\n' => return Err(unterminated()),
            '\\' => {
                let escape = *chars.get(i).ok_or_else(unterminated)?;
                i += 1;
                let simple = match escape {
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\x0b'),
                    '\\' | '"' => Some(escape),
                    _ => None,
                };
                if let Some(c) = simple {
                    push(&mut bytes, c);
                    continue;
                }
                let bad = || parse_err(format!("invalid escape sequence \\{escape} in quoted string"));
                let (len, radix) = match escape {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => {
                        i -= 1;
                        (3, 8)
                    }
                    _ => return Err(bad()),
                };
                let digits = chars.get(i..i + len).filter(|d| d.iter().all(|c| c.is_digit(radix))).ok_or_else(bad)?;
                let value = u32::from_str_radix(&digits.iter().collect::<String>(), radix).map_err(|_| bad())?;
                i += len;
                match escape {
                    'u' | 'U' => push(&mut bytes, char::from_u32(value).ok_or_else(bad)?),
                    _ => bytes.push(u8::try_from(value).map_err(|_| bad())?),
                }
            }
            c => push(&mut bytes, c),
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| parse_err("quoted string is not valid UTF-8"))?;
    Ok((text, i))
}

fn parse_pipeline(s: &str, at: usize) -> Result<Pipeline> {
    let toks = lex(s, at)?;
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
                Tok::Word(w, _) if w.starts_with('$') => Some(w.clone()),
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
                    Some(Tok::Word(w, _)) if w.starts_with('.') && w.len() > 1 => {
                        *pos += 1;
                        field_path(&w[1..], w)?
                    }
                    _ => vec![],
                };
                cmds.last_mut().unwrap().args.push(Arg::Sub(sub, path));
            }
            Tok::Str(s) => cmds.last_mut().unwrap().args.push(Arg::Literal(Value::from(s.as_str()))),
            Tok::Word(w, at) => cmds.last_mut().unwrap().args.push(parse_word(w, *at)?),
            Tok::Comma | Tok::Declare => return Err(parse_err("unexpected punctuation")),
        }
        *pos += 1;
    }
    if cmds.iter().any(|c| c.args.is_empty()) {
        return Err(parse_err("missing value for command"));
    }
    if cmds.iter().any(|c| c.args[0] == Arg::Literal(Value::Null)) {
        return Err(parse_err("nil is not a command"));
    }
    Ok(Pipeline { decl, cmds })
}

fn parse_word(w: &str, at: usize) -> Result<Arg> {
    match w {
        "." => return Ok(Arg::Field(vec![], at)),
        "true" | "false" => return Ok(Arg::Literal(Value::Bool(w == "true"))),
        "nil" => return Ok(Arg::Literal(Value::Null)),
        _ => {}
    }
    if starts_number(w) {
        return number(w).map(Arg::Literal);
    }
    if let Some(path) = w.strip_prefix('.') {
        let path = field_path(path, w)?;
        // Go's parser makes `.A.B` a chain placed at its second field.
        let at = if path.len() > 1 { at + 1 + path[0].len() } else { at };
        return Ok(Arg::Field(path, at));
    }
    if let Some(var) = w.strip_prefix('$') {
        let (name, path) = match var.split_once('.') {
            Some((name, path)) => (name, field_path(path, w)?),
            None => (var, vec![]),
        };
        if !name.is_empty() && !is_identifier(name) {
            return Err(parse_err(format!("bad variable name {w:?}")));
        }
        return Ok(Arg::Var(format!("${name}"), path));
    }
    if is_identifier(w) {
        // Go checks functions when it parses.
        if !super::funcs::NAMES.contains(&w) {
            return Err(parse_err(format!("function {w:?} not defined")));
        }
        return Ok(Arg::Func(w.to_string()));
    }
    Err(parse_err(format!("unexpected {w:?}")))
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// `A.B` of `.A.B` or `$x.A.B`.
fn field_path(path: &str, word: &str) -> Result<Vec<String>> {
    path.split('.')
        .map(|field| match is_identifier(field) {
            true => Ok(field.to_string()),
            false => Err(parse_err(format!("bad field name in {word:?}"))),
        })
        .collect()
}

/// Numbers start with a digit, or a sign or `.` and a digit (`.5` is a number, not a field).
fn starts_number(w: &str) -> bool {
    let mut chars = w.chars();
    match chars.next() {
        Some(c) if c.is_ascii_digit() => true,
        Some('+' | '-' | '.') => chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// A number constant as Go reads it: an int (decimal, `0x` hex, `0o`/leading-0 octal, `0b`
/// binary, `_` separators) unless it has a fraction or exponent, then a float64.
fn number(word: &str) -> Result<Value> {
    let bad = || parse_err(format!("illegal number syntax: {word:?}"));
    let clean = word.replace('_', "");
    let (negative, unsigned) = match clean.strip_prefix('-') {
        Some(u) => (true, u),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let integer = match unsigned.get(..2) {
        Some("0x" | "0X") => Some((16, &unsigned[2..])),
        Some("0o" | "0O") => Some((8, &unsigned[2..])),
        Some("0b" | "0B") => Some((2, &unsigned[2..])),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') && all_digits(unsigned) => Some((8, &unsigned[1..])),
        _ if all_digits(unsigned) => Some((10, unsigned)),
        _ => None,
    };
    if let Some((radix, digits)) = integer {
        let magnitude = i128::from_str_radix(digits, radix).map_err(|_| bad())?;
        let n = if negative { -magnitude } else { magnitude };
        return i64::try_from(n).map(Value::from).map_err(|_| parse_err(format!("integer overflow: {word:?}")));
    }
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() && unsigned.contains(['.', 'e', 'E']) => Ok(Value::from(f)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_part_from_elsewhere_is_placed_at_the_end() {
        let whole = String::from("range x");
        assert_eq!(super::offset_in(&whole, &whole[6..]), 6);
        assert_eq!(super::offset_in(&whole, ""), whole.len());
    }
}
