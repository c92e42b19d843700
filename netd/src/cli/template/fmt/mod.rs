//! Go's `fmt` package for template values: `fmt.Sprintf` (the `printf` function) with its
//! verbs, flags, width and precision, and `fmt.Sprint`/`fmt.Sprintln` (`print`, `println` and
//! how `{{.}}` prints a value).
//!
//! Template values are JSON, so they reach fmt the way `encoding/json`-style `interface{}`
//! values would, with one difference that matters for the verbs: a JSON number without a
//! fraction or exponent is a Go `int` (`%d` works on it), any other number is a `float64`.
//! null is a nil interface, arrays are `[]interface {}`, objects `map[string]interface {}`.
//!
//! The layout follows Go's `fmt/print.go` (which verb each kind accepts, `%!d(string=x)` for
//! the others, `%!d(MISSING)`, `%!(EXTRA ...)`) and `fmt/format.go` (padding, signs, zero
//! padding after the sign); `float` is `strconv.FormatFloat`, `quote` is `strconv.Quote`.
//!
//! Departures, all explicit errors rather than output: a verb that Go does not have (Go
//! prints `%!z(int=1)`; a typo in `--format` is better reported than printed), `%p` (template
//! values have no address), `%w`, `%x`/`%X` of a float (hexadecimal floating point) and
//! explicit argument indexes (`%[2]d`).
use serde_json::{Map, Value};

mod float;
mod quote;
#[cfg(test)]
mod tests;

use quote::{can_backquote, is_print, quote, quote_rune};

/// Why a format cannot be printed; the caller adds which function failed.
pub(super) type FormatError = String;

/// `fmt.Sprintf(format, args...)`.
pub(super) fn sprintf(format: &str, args: &[Value]) -> Result<String, FormatError> {
    let mut p = Printer::default();
    let chars: Vec<char> = format.chars().collect();
    let end = chars.len();
    let mut i = 0;
    let mut arg_num = 0;
    while i < end {
        let literal_start = i;
        while i < end && chars[i] != '%' {
            i += 1;
        }
        p.buf.extend(&chars[literal_start..i]);
        if i >= end {
            break;
        }
        i += 1; // the '%'

        p.flags = Flags::default();
        while i < end {
            match chars[i] {
                '#' => p.flags.sharp = true,
                '0' => p.flags.zero = true,
                '+' => p.flags.plus = true,
                '-' => p.flags.minus = true,
                ' ' => p.flags.space = true,
                _ => break,
            }
            i += 1;
        }

        if i < end && chars[i] == '*' {
            i += 1;
            match int_from_arg(args, &mut arg_num) {
                Some(width) => {
                    // A negative width from an operand means "pad on the right".
                    p.flags.minus |= width < 0;
                    p.flags.width = Some(width.unsigned_abs() as usize);
                }
                None => p.buf.push_str("%!(BADWIDTH)"),
            }
        } else {
            match parse_number(&chars, i) {
                Number::Found(width, next) => {
                    p.flags.width = Some(width);
                    i = next;
                }
                Number::Absent => {}
                Number::TooLarge => i = end,
            }
        }

        if i + 1 < end && chars[i] == '.' {
            i += 1;
            if chars[i] == '*' {
                i += 1;
                match int_from_arg(args, &mut arg_num) {
                    Some(precision) if precision >= 0 => p.flags.precision = Some(precision as usize),
                    // Go reports a negative precision operand like a non-int one.
                    _ => p.buf.push_str("%!(BADPREC)"),
                }
            } else {
                match parse_number(&chars, i) {
                    Number::Found(precision, next) => {
                        p.flags.precision = Some(precision);
                        i = next;
                    }
                    // "%.f": a period without a number is precision 0.
                    Number::Absent => p.flags.precision = Some(0),
                    Number::TooLarge => i = end,
                }
            }
        }

        if i >= end {
            p.buf.push_str("%!(NOVERB)");
            break;
        }
        let verb = chars[i];
        i += 1;
        if verb == '%' {
            // A literal percent consumes no operand and ignores width and precision.
            p.buf.push('%');
            continue;
        }
        check_verb(verb, format)?;
        let Some(arg) = args.get(arg_num) else {
            p.buf.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        if verb == 'v' {
            // `%#v` is Go syntax, a format of its own: `#` stops meaning "alternate form", and
            // `+` only names struct fields (there are none here).
            p.flags.sharp_v = p.flags.sharp;
            p.flags.sharp = false;
            p.flags.plus = false;
        }
        p.print_arg(arg, verb)?;
        arg_num += 1;
    }

    if arg_num < args.len() {
        p.flags = Flags::default();
        p.buf.push_str("%!(EXTRA ");
        for (k, arg) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                p.buf.push_str(", ");
            }
            if arg.is_null() {
                p.buf.push_str("<nil>");
            } else {
                p.buf.push_str(type_name(arg));
                p.buf.push('=');
                p.print_arg(arg, 'v')?;
            }
        }
        p.buf.push(')');
    }
    Ok(p.buf)
}

/// `strconv.Quote`.
pub(in crate::cli) fn go_quote(s: &str) -> String {
    quote(s, false)
}

/// `fmt.Sprint(args...)`: each operand as `%v`, with a space between two operands when
/// neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !arg.is_string() && !args[i - 1].is_string() {
            p.buf.push(' ');
        }
        p.print_default(arg);
    }
    p.buf
}

/// `fmt.Sprintln(args...)`: each operand as `%v`, always space-separated, then a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_default(arg);
    }
    p.buf.push('\n');
    p.buf
}

/// A value's Go type, as `%T` and the `%!verb(type=value)` markers print it.
pub(super) fn type_name(v: &Value) -> &'static str {
    match operand(v) {
        Operand::Nil => "<nil>",
        Operand::Bool(_) => "bool",
        Operand::Int(_) => "int",
        Operand::Float(_) => "float64",
        Operand::Str(_) => "string",
        Operand::List(_) => "[]interface {}",
        Operand::Map(_) => "map[string]interface {}",
    }
}

/// What fmt sees in a JSON value.
enum Operand<'a> {
    Nil,
    Bool(bool),
    /// i128 holds every JSON integer serde_json keeps (i64 and u64) without sign games.
    Int(i128),
    Float(f64),
    Str(&'a str),
    List(&'a [Value]),
    Map(&'a Map<String, Value>),
}

fn operand(v: &Value) -> Operand<'_> {
    match v {
        Value::Null => Operand::Nil,
        Value::Bool(b) => Operand::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Operand::Int(i.into()),
            (None, Some(u), _) => Operand::Int(u.into()),
            (None, None, f) => Operand::Float(f.unwrap_or(f64::NAN)),
        },
        Value::String(s) => Operand::Str(s),
        Value::Array(items) => Operand::List(items),
        Value::Object(map) => Operand::Map(map),
    }
}

/// Go's verbs this engine prints; the others are errors (see the module comment).
fn check_verb(verb: char, format: &str) -> Result<(), FormatError> {
    match verb {
        'v' | 'T' | 't' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X' | 'c' | 'q' | 'U' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G'
        | 's' => Ok(()),
        'p' => Err(format!("%p is not supported (template values have no address) in {format:?}")),
        'w' => Err(format!("%w is only for errors (fmt.Errorf) in {format:?}")),
        '[' => Err(format!("explicit argument indexes (%[n]) are not supported in {format:?}")),
        other => Err(format!("unknown verb %{other} in {format:?}")),
    }
}

/// A `*` width or precision: the next operand, which must be an int within ±1e6. The operand
/// is used up even when it is not an int, as in Go.
fn int_from_arg(args: &[Value], arg_num: &mut usize) -> Option<i64> {
    let arg = args.get(*arg_num)?;
    *arg_num += 1;
    match operand(arg) {
        Operand::Int(n) if n.abs() <= MAX_WIDTH as i128 => Some(n as i64),
        _ => None,
    }
}

/// Go's limit on widths and precisions (`fmt.tooLarge`).
const MAX_WIDTH: usize = 1_000_000;

enum Number {
    Found(usize, usize),
    Absent,
    /// Go gives up on the rest of the format (`%!(NOVERB)`).
    TooLarge,
}

/// The decimal number at `chars[start..]` (Go's `parsenum`), and where it ends.
fn parse_number(chars: &[char], start: usize) -> Number {
    let mut n = 0usize;
    let mut i = start;
    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
        if n > MAX_WIDTH {
            return Number::TooLarge;
        }
        n = n * 10 + d as usize;
        i += 1;
    }
    if i == start {
        Number::Absent
    } else {
        Number::Found(n, i)
    }
}

#[derive(Clone, Copy, Default)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    /// `%#v`: print as Go syntax.
    sharp_v: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Formats operands into `buf` under the current verb's `flags` (Go's `pp` and `fmt`).
#[derive(Default)]
struct Printer {
    buf: String,
    flags: Flags,
}

impl Printer {
    /// `%v` with no flags, which cannot fail.
    fn print_default(&mut self, v: &Value) {
        self.flags = Flags::default();
        self.print_arg(v, 'v').expect("%v prints every value");
    }

    /// One operand (Go's `printArg`).
    fn print_arg(&mut self, v: &Value, verb: char) -> Result<(), FormatError> {
        if verb == 'T' {
            match v {
                Value::Null => self.pad("<nil>"),
                _ => self.fmt_s(type_name(v)),
            }
            return Ok(());
        }
        if v.is_null() {
            match verb {
                'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, v),
            }
            return Ok(());
        }
        self.print_value(v, verb)
    }

    /// An element of a list or map: unlike a nil operand, a nil element prints as `<nil>`
    /// whatever the verb, without padding (Go prints the empty interface it sits in).
    fn print_element(&mut self, v: &Value, verb: char) -> Result<(), FormatError> {
        if v.is_null() {
            self.buf.push_str(if self.flags.sharp_v { "interface {}(nil)" } else { "<nil>" });
            return Ok(());
        }
        self.print_value(v, verb)
    }

    fn print_value(&mut self, v: &Value, verb: char) -> Result<(), FormatError> {
        match operand(v) {
            Operand::Nil => self.buf.push_str("<nil>"),
            Operand::Bool(b) => match verb {
                't' | 'v' => self.pad(if b { "true" } else { "false" }),
                _ => self.bad_verb(verb, v),
            },
            Operand::Int(n) => self.fmt_int(n, verb, v),
            Operand::Float(x) => self.fmt_float(x, verb, v)?,
            Operand::Str(s) => self.fmt_string(s, verb, v),
            Operand::List(items) => {
                // The verb applies to each element, not to the list as a whole.
                let (open, separator, close) =
                    if self.flags.sharp_v { ("[]interface {}{", ", ", "}") } else { ("[", " ", "]") };
                self.buf.push_str(open);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(separator);
                    }
                    self.print_element(item, verb)?;
                }
                self.buf.push_str(close);
            }
            Operand::Map(map) if !self.flags.sharp_v && super::exec::is_struct(map) => {
                // A Docker struct: its fields' values in order, `{a b}` (`%+v`: `{A:a B:b}`).
                // An IPAM config has four fields whatever its JSON leaves out.
                const IPAM_CONFIG: [&str; 4] = ["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"];
                let ipam_config = map.contains_key("Subnet") && map.keys().all(|k| IPAM_CONFIG.contains(&k.as_str()));
                let fields: Vec<(&str, Value)> = if ipam_config {
                    IPAM_CONFIG
                        .iter()
                        .map(|&k| {
                            let missing =
                                if k == "AuxiliaryAddresses" { Value::Object(Map::new()) } else { Value::from("") };
                            (k, map.get(k).cloned().unwrap_or(missing))
                        })
                        .collect()
                } else {
                    map.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
                };
                self.buf.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    if self.flags.plus {
                        self.buf.push_str(key);
                        self.buf.push(':');
                    }
                    self.print_element(value, verb)?;
                }
                self.buf.push('}');
            }
            Operand::Map(map) => {
                let (open, separator, close) =
                    if self.flags.sharp_v { ("map[string]interface {}{", ", ", "}") } else { ("map[", " ", "]") };
                self.buf.push_str(open);
                // Go prints maps in key order.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(separator);
                    }
                    self.fmt_string(key, verb, &Value::from(key.as_str()));
                    self.buf.push(':');
                    self.print_element(&map[key], verb)?;
                }
                self.buf.push_str(close);
            }
        }
        Ok(())
    }

    /// `%!d(string=abc)`: the verb does not apply to the value. The value prints as `%v`
    /// with the verb's flags, as in Go (`%5d` of "ab" is `%!d(string=   ab)`).
    fn bad_verb(&mut self, verb: char, v: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if v.is_null() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(type_name(v));
            self.buf.push('=');
            // Only scalars get here (lists and maps apply the verb to their elements), and
            // `%v` prints every scalar.
            let _ = self.print_value(v, 'v');
        }
        self.buf.push(')');
    }

    fn fmt_int(&mut self, n: i128, verb: char, v: &Value) {
        match verb {
            'v' | 'd' => self.fmt_integer(n, 10, false, verb),
            'b' => self.fmt_integer(n, 2, false, verb),
            'o' | 'O' => self.fmt_integer(n, 8, false, verb),
            'x' => self.fmt_integer(n, 16, false, verb),
            'X' => self.fmt_integer(n, 16, true, verb),
            'c' => self.pad(&code_point(n).to_string()),
            'q' => self.pad(&quote_rune(code_point(n), self.flags.plus)),
            'U' => self.fmt_unicode(n),
            _ => self.bad_verb(verb, v),
        }
    }

    /// Go's `fmtInteger`: a precision or the `0` flag ask for leading zeros (the precision
    /// wins), `#` adds the base prefix, and the sign goes in front of the zeros.
    fn fmt_integer(&mut self, n: i128, base: u32, upper: bool, verb: char) {
        let f = self.flags;
        let negative = n < 0;
        let magnitude = n.unsigned_abs();
        let mut min_digits = 0;
        if let Some(precision) = f.precision {
            if precision == 0 && magnitude == 0 {
                // "%.0d" of 0 prints nothing, only the padding.
                self.buf.extend(std::iter::repeat_n(' ', f.width.unwrap_or(0)));
                return;
            }
            min_digits = precision;
        } else if let (true, false, Some(width)) = (f.zero, f.minus, f.width) {
            min_digits = width.saturating_sub(usize::from(negative || f.plus || f.space));
        }
        let mut digits = match (base, upper) {
            (2, _) => format!("{magnitude:b}"),
            (8, _) => format!("{magnitude:o}"),
            (16, false) => format!("{magnitude:x}"),
            (16, true) => format!("{magnitude:X}"),
            _ => magnitude.to_string(),
        };
        if digits.len() < min_digits {
            digits.insert_str(0, &"0".repeat(min_digits - digits.len()));
        }
        if f.sharp {
            match base {
                2 => digits.insert_str(0, "0b"),
                8 if !digits.starts_with('0') => digits.insert(0, '0'),
                16 => digits.insert_str(0, if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        if verb == 'O' {
            digits.insert_str(0, "0o");
        }
        if negative {
            digits.insert(0, '-');
        } else if f.plus {
            digits.insert(0, '+');
        } else if f.space {
            digits.insert(0, ' ');
        }
        // Zero padding was done above, as digits; what is left is spaces.
        self.pad_with_spaces(&digits);
    }

    /// `%U`: `U+0041`, with `#` also the character (`U+0041 'A'`) when printable.
    fn fmt_unicode(&mut self, n: i128) {
        // Go formats the value as a uint64: -1 is U+FFFFFFFFFFFFFFFF.
        let u = n as u64;
        let min_digits = self.flags.precision.filter(|&p| p > 4).unwrap_or(4);
        // Padded by hand: Rust's formatter takes no width above u16::MAX, Go's up to ≈1e7.
        let hex = format!("{u:X}");
        let mut out = format!("U+{}{hex}", "0".repeat(min_digits.saturating_sub(hex.len())));
        if let Some(c) = char::from_u32(u as u32).filter(|c| self.flags.sharp && u <= 0x10FFFF && is_print(*c)) {
            out.push_str(&format!(" '{c}'"));
        }
        self.pad_with_spaces(&out);
    }

    fn fmt_float(&mut self, x: f64, verb: char, v: &Value) -> Result<(), FormatError> {
        match verb {
            'v' | 'g' => self.fmt_float_as(x, 'g', -1),
            'G' => self.fmt_float_as(x, 'G', -1),
            'e' | 'E' | 'f' => self.fmt_float_as(x, verb, 6),
            'F' => self.fmt_float_as(x, 'f', 6),
            'b' => self.fmt_float_as(x, 'b', -1),
            'x' | 'X' => return Err(format!("%{verb} of a float (hexadecimal floating point) is not supported")),
            _ => self.bad_verb(verb, v),
        }
        Ok(())
    }

    /// Go's `fmt.fmtFloat`: `strconv.FormatFloat`, then the sign (`+`, space), `#` (keep the
    /// point and trailing zeros) and zero padding after the sign.
    fn fmt_float_as(&mut self, x: f64, format: char, default_precision: i32) {
        let f = self.flags;
        let precision = f.precision.map_or(default_precision, |p| p as i32);
        let mut num = float::format_float(x, format, precision);
        if !num.starts_with('-') {
            num.insert(0, if f.space && !f.plus { ' ' } else { '+' });
        }
        if f.sharp && format != 'b' {
            num = keep_point_and_zeros(&num, format, precision);
        }
        if f.plus || !num.starts_with('+') {
            if let (true, false, Some(width)) = (f.zero, f.minus, f.width) {
                if width > num.len() {
                    // "-003.14": the sign goes before the zeros.
                    self.buf.push_str(&num[..1]);
                    self.buf.extend(std::iter::repeat_n('0', width - num.len()));
                    self.buf.push_str(&num[1..]);
                    return;
                }
            }
            self.pad(&num);
        } else {
            self.pad(&num[1..]);
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, v: &Value) {
        match verb {
            'v' if self.flags.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_hex_bytes(s, false),
            'X' => self.fmt_hex_bytes(s, true),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, v),
        }
    }

    /// `%s`: the precision is a maximum number of characters.
    fn fmt_s(&mut self, s: &str) {
        let truncated = self.truncate(s);
        self.pad(truncated);
    }

    /// `%q`: a Go string literal; `#` prefers a raw `` `string` ``, `+` escapes non-ASCII.
    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        if self.flags.sharp && can_backquote(s) {
            self.pad(&format!("`{s}`"));
        } else {
            self.pad(&quote(s, self.flags.plus));
        }
    }

    /// `%x` of a string: two hex digits per byte; the precision counts bytes, space separates
    /// bytes, `#` adds 0x (to each byte when space-separated).
    fn fmt_hex_bytes(&mut self, s: &str, upper: bool) {
        let f = self.flags;
        let bytes = &s.as_bytes()[..f.precision.map_or(s.len(), |p| p.min(s.len()))];
        let prefix = if upper { "0X" } else { "0x" };
        let mut out = String::new();
        if f.sharp && !bytes.is_empty() {
            out.push_str(prefix);
        }
        for (i, b) in bytes.iter().enumerate() {
            if f.space && i > 0 {
                out.push(' ');
                if f.sharp {
                    out.push_str(prefix);
                }
            }
            out.push_str(&if upper { format!("{b:02X}") } else { format!("{b:02x}") });
        }
        self.pad(&out);
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        match self.flags.precision.and_then(|p| s.char_indices().nth(p)) {
            Some((cut, _)) => &s[..cut],
            None => s,
        }
    }

    /// Go's `pad`: at least `width` characters, spaces (or with `0`, zeros) on the left, or
    /// with `-` spaces on the right.
    fn pad(&mut self, s: &str) {
        let f = self.flags;
        let fill = f.width.unwrap_or(0).saturating_sub(s.chars().count());
        if f.minus {
            self.buf.push_str(s);
            self.buf.extend(std::iter::repeat_n(' ', fill));
        } else {
            self.buf.extend(std::iter::repeat_n(if f.zero { '0' } else { ' ' }, fill));
            self.buf.push_str(s);
        }
    }

    /// `pad` for numbers whose zeros, if any, are already inside `s`.
    fn pad_with_spaces(&mut self, s: &str) {
        let zero = std::mem::replace(&mut self.flags.zero, false);
        self.pad(s);
        self.flags.zero = zero;
    }
}

/// `%c`/`%q` of an int: the code point, or U+FFFD when it is not a valid one.
fn code_point(n: i128) -> char {
    u32::try_from(n).ok().and_then(char::from_u32).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The `#` flag on `%e %f %g`: always a decimal point, and `%g` keeps its trailing zeros up to
/// the precision (6 by default), e.g. `%#g` of 1.0 is `1.00000`. `num` starts with its sign.
fn keep_point_and_zeros(num: &str, format: char, precision: i32) -> String {
    let mut digits_left = match format {
        'g' | 'G' if precision < 0 => 6,
        'g' | 'G' => precision,
        _ => 0,
    };
    let (mantissa, exponent) = match num.find(['e', 'E']) {
        Some(i) => num.split_at(i),
        None => (num, ""),
    };
    let mut seen_nonzero = false;
    for c in mantissa[1..].chars().filter(|c| c.is_ascii_digit()) {
        // Significant digits count from the first non-zero one.
        seen_nonzero |= c != '0';
        if seen_nonzero {
            digits_left -= 1;
        }
    }
    let mut out = mantissa.to_string();
    if !mantissa.contains('.') {
        if &mantissa[1..] == "0" {
            // A lone 0 counts as one significant digit.
            digits_left -= 1;
        }
        out.push('.');
    }
    if digits_left > 0 {
        out.push_str(&"0".repeat(digits_left as usize));
    }
    out + exponent
}
