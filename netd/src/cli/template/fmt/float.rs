//! Go's `strconv.FormatFloat` for the formats fmt uses: `e`/`E`, `f`, `g`/`G` and `b`.
//!
//! Rust's formatter supplies the decimal digits: `{:e}` the shortest digits that read back as
//! the same float (what Go's precision -1 means), `{:.Ne}`/`{:.N}` the digits correctly rounded
//! to a precision (ties to even on the exact binary value, as Go's `decimal.Round`). How those
//! digits are laid out (`1e+06`, when `%g` switches to an exponent, trailing zeros) is Go's
//! `formatDigits`, ported below. Only finite values arrive here: JSON has no NaN or infinity.

/// A float's decimal digits without leading or trailing zeros, and where the decimal point
/// goes: 0.012 is `12` with the point 1 place before them (`point` = -1); zero has no digits.
struct Digits {
    digits: Vec<u8>,
    point: i32,
}

impl Digits {
    /// From Rust's `{:e}` output, e.g. `1.2345e-7`.
    fn from_scientific(s: &str) -> Self {
        let (mantissa, exponent) = s.split_once('e').expect("{:e} has an exponent");
        let exponent: i32 = exponent.parse().expect("{:e} exponent is an integer");
        Self::new(mantissa.bytes().filter(u8::is_ascii_digit).collect(), exponent + 1)
    }

    /// From Rust's `{:.N}` output, e.g. `123.4560`.
    fn from_fixed(s: &str) -> Self {
        let integer_len = s.find('.').unwrap_or(s.len());
        Self::new(s.bytes().filter(u8::is_ascii_digit).collect(), integer_len as i32)
    }

    fn new(mut digits: Vec<u8>, mut point: i32) -> Self {
        let leading = digits.iter().take_while(|&&d| d == b'0').count();
        digits.drain(..leading);
        point -= leading as i32;
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            point = 0;
        }
        Self { digits, point }
    }

    fn len(&self) -> i32 {
        self.digits.len() as i32
    }

    /// The digit at `i` places from the first one, zero beyond the ends.
    fn at(&self, i: i32) -> char {
        usize::try_from(i).ok().and_then(|i| self.digits.get(i)).map_or('0', |&d| d as char)
    }
}

/// More digits than any f64 has in its exact decimal expansion (at most 1,074 after the point).
const EXACT_DIGITS: usize = 1_100;

/// `strconv.FormatFloat(v, format, precision, 64)`; precision -1 is "as few digits as read
/// back as `v`".
pub(super) fn format_float(v: f64, format: char, precision: i32) -> String {
    if format == 'b' {
        return binary_exponent(v);
    }
    let negative = v.is_sign_negative();
    let v = v.abs();
    let shortest = precision < 0;
    let (digits, precision) = if shortest {
        let d = Digits::from_scientific(&format!("{v:e}"));
        let precision = match format {
            'e' | 'E' => (d.len() - 1).max(0),
            'f' => (d.len() - d.point).max(0),
            _ => d.len(),
        };
        (d, precision)
    } else {
        // Rust's formatter takes at most u16::MAX digits of precision; Go takes up to ≈1e7. A
        // finite f64 has at most 1,074 decimal places and 767 significant digits, so digits
        // beyond EXACT_DIGITS are zeros, which the layout below adds up to `precision`.
        let p = (precision as usize).min(EXACT_DIGITS);
        match format {
            'e' | 'E' => (Digits::from_scientific(&format!("{v:.p$e}")), precision),
            'f' => (Digits::from_fixed(&format!("{v:.p$}")), precision),
            // %g's precision counts significant digits, and 0 means 1.
            _ => {
                let significant = precision.max(1);
                let p = (significant as usize - 1).min(EXACT_DIGITS);
                (Digits::from_scientific(&format!("{v:.p$e}")), significant)
            }
        }
    };
    let mut out = String::from(if negative { "-" } else { "" });
    match format {
        'e' | 'E' => fixed_exponent(&mut out, &digits, precision, format),
        'f' => fixed_point(&mut out, &digits, precision),
        _ => {
            // %g: an exponent when it is below -4 or at least the precision (6 for the
            // shortest form), and no trailing zeros either way.
            let mut exponent_at = precision;
            if exponent_at > digits.len() && digits.len() >= digits.point {
                exponent_at = digits.len();
            }
            if shortest {
                exponent_at = 6;
            }
            let exponent = digits.point - 1;
            let e = if format == 'G' { 'E' } else { 'e' };
            if exponent < -4 || exponent >= exponent_at {
                fixed_exponent(&mut out, &digits, precision.min(digits.len()) - 1, e);
            } else {
                let precision = if precision > digits.point { digits.len() } else { precision };
                fixed_point(&mut out, &digits, (precision - digits.point).max(0));
            }
        }
    }
    out
}

/// `%e`: `d.ddddde±dd`, `precision` digits after the point, the exponent at least two digits.
fn fixed_exponent(out: &mut String, d: &Digits, precision: i32, e: char) {
    out.push(d.at(0));
    if precision > 0 {
        out.push('.');
        out.extend((1..=precision).map(|i| d.at(i)));
    }
    let exponent = if d.digits.is_empty() { 0 } else { d.point - 1 };
    out.push(e);
    out.push(if exponent < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exponent.abs()));
}

/// `%f`: `ddd.ddd`, `precision` digits after the point.
fn fixed_point(out: &mut String, d: &Digits, precision: i32) {
    if d.point > 0 {
        out.extend((0..d.point).map(|i| d.at(i)));
    } else {
        out.push('0');
    }
    if precision > 0 {
        out.push('.');
        out.extend((0..precision).map(|i| d.at(d.point + i)));
    }
}

/// `%b`: the float's binary mantissa and power of two, e.g. 1.0 is `4503599627370496p-52`.
fn binary_exponent(v: f64) -> String {
    const MANTISSA_BITS: u32 = 52;
    const BIAS: i64 = 1023;
    let bits = v.to_bits();
    let negative = bits >> 63 != 0;
    let biased = ((bits >> MANTISSA_BITS) & 0x7ff) as i64;
    let mut mantissa = bits & ((1 << MANTISSA_BITS) - 1);
    let exponent = if biased == 0 {
        // Subnormal: no implicit leading 1, and the smallest exponent.
        1 - BIAS - MANTISSA_BITS as i64
    } else {
        mantissa |= 1 << MANTISSA_BITS;
        biased - BIAS - MANTISSA_BITS as i64
    };
    format!("{}{mantissa}p{}{exponent}", if negative { "-" } else { "" }, if exponent >= 0 { "+" } else { "" })
}
