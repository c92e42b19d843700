//! Go's `strconv` quoting, for `%q` and `%#v`: `Quote`/`QuoteToASCII`, `QuoteRune`/
//! `QuoteRuneToASCII`, `CanBackquote`, and `IsPrint`.

/// `"..."` with Go's escapes; `ascii_only` also escapes every non-ASCII character (`%+q`).
pub(super) fn quote(s: &str, ascii_only: bool) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        escape(&mut out, c, '"', ascii_only);
    }
    out.push('"');
    out
}

/// `'x'` for `%q` of an int.
pub(super) fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from('\'');
    escape(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// Whether `s` can be a raw `` `string` `` (`%#q`): no control characters other than tab, no
/// backquote, no byte order mark.
pub(super) fn can_backquote(s: &str) -> bool {
    !s.chars().any(|c| (c < ' ' && c != '\t') || c == '`' || c == '\u{7f}' || c == '\u{feff}')
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
///
/// Rust's standard library has no general categories, so this is Go's definition minus the
/// tables: controls and every space but U+0020 by Rust's own properties, then the format
/// characters (Cf), private-use areas and noncharacters by range. Unassigned code points
/// count as printable here (Go escapes them); none of the template's data has any.
pub(super) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c as u32,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xE000..=0xF8FF
            | 0xFDD0..=0xFDEF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..=0x10FFFF
    )
}

/// Go's `appendEscapedRune`.
fn escape(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) && (c.is_ascii() || !ascii_only) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if c < ' ' || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}
