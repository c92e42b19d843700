//! Expected outputs are Go's: the examples in the `fmt` package documentation and the cases
//! of Go's `fmt/fmt_test.go` that apply to JSON values (ints, float64s, strings, bools, nil,
//! `[]interface {}` and `map[string]interface {}`).
// Go's documentation formats 3.14159, not π, and Go's tests write floats with more digits
// than a float64 holds; both stay as Go wrote them.
#![allow(clippy::approx_constant, clippy::excessive_precision)]
use serde_json::{json, Value};

use super::{sprint, sprintf, sprintln};

/// `fmt.Sprintf(format, arg)` for each `(format, arg, want)`.
fn check(cases: &[(&str, Value, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(format, arg, want)| {
            let got = sprintf(format, std::slice::from_ref(arg));
            (got.as_deref() != Ok(*want)).then(|| format!("Sprintf({format:?}, {arg}) = {got:?}, want {want:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn documented_examples() {
    // https://pkg.go.dev/fmt: width and precision, flags, and the "Format errors" section.
    check(&[
        ("%6.2f", json!(3.14159), "  3.14"),
        ("%9.2f", json!(3.14159), "     3.14"),
        ("%9.f", json!(3.14159), "        3"),
        ("%.2f", json!(3.14159), "3.14"),
        ("%6.3f", json!(12.345), "12.345"),
        ("%.3g", json!(12.345), "12.3"),
        ("%-8s|", json!("web"), "web     |"),
        ("%-10s|", json!("web"), "web       |"),
        ("%8s|", json!("web"), "     web|"),
        ("%08.3f", json!(3.14159), "0003.142"),
        ("%08.3f", json!(-3.14159), "-003.142"),
        ("%+d", json!(5), "+5"),
        ("%x", json!("hello"), "68656c6c6f"),
        ("% x", json!("hello"), "68 65 6c 6c 6f"),
        ("%q", json!("hello"), r#""hello""#),
        ("%5t", json!(true), " true"),
        ("%-7t|", json!(false), "false  |"),
        ("%e", json!(1000000.0), "1.000000e+06"),
        ("%g", json!(1000000.0), "1e+06"),
        ("%d", json!("hi"), "%!d(string=hi)"),
        ("%5d", json!(3), "    3"),
    ]);
    assert_eq!(sprintf("hi", &[json!("guys")]).unwrap(), "hi%!(EXTRA string=guys)");
    assert_eq!(sprintf("hi%d", &[]).unwrap(), "hi%!d(MISSING)");
    assert_eq!(sprintf("%*s", &[json!(4.5), json!("hi")]).unwrap(), "%!(BADWIDTH)hi");
    assert_eq!(sprintf("%.*s", &[json!(4.5), json!("hi")]).unwrap(), "%!(BADPREC)hi");
}

#[test]
fn integers() {
    check(&[
        ("%d", json!(12345), "12345"),
        ("%v", json!(12345), "12345"),
        ("%d", json!(-12345), "-12345"),
        ("%d", json!(u64::MAX), "18446744073709551615"),
        ("%d", json!(i64::MIN), "-9223372036854775808"),
        ("%.d", json!(0), ""),
        ("%.0d", json!(0), ""),
        ("%6.0d", json!(0), "      "),
        ("%06.0d", json!(0), "      "),
        ("% d", json!(12345), " 12345"),
        ("%+d", json!(12345), "+12345"),
        ("%+d", json!(-12345), "-12345"),
        ("%b", json!(7), "111"),
        ("%b", json!(-6), "-110"),
        ("%#b", json!(7), "0b111"),
        ("%#b", json!(-6), "-0b110"),
        ("%o", json!(668), "1234"),
        ("%o", json!(-668), "-1234"),
        ("%#o", json!(668), "01234"),
        ("%#o", json!(-668), "-01234"),
        ("%O", json!(668), "0o1234"),
        ("%O", json!(-668), "-0o1234"),
        ("%#X", json!(0), "0X0"),
        ("%x", json!(0x12abcdef), "12abcdef"),
        ("%X", json!(0x12abcdef), "12ABCDEF"),
        ("%X", json!(u64::MAX), "FFFFFFFFFFFFFFFF"),
        ("%#x", json!(255), "0xff"),
        ("%x", json!(-255), "-ff"),
        ("%.20b", json!(7), "00000000000000000111"),
        ("%10d", json!(12345), "     12345"),
        ("%10d", json!(-12345), "    -12345"),
        ("%+10d", json!(12345), "    +12345"),
        ("%010d", json!(12345), "0000012345"),
        ("%010d", json!(-12345), "-000012345"),
        ("%20.8d", json!(1234), "            00001234"),
        ("%20.8d", json!(-1234), "           -00001234"),
        ("%020.8d", json!(1234), "            00001234"),
        ("%-20.8d", json!(-1234), "-00001234           "),
        ("%-#20.8x", json!(0x1234abc), "0x01234abc          "),
        ("%-#20.8X", json!(0x1234abc), "0X01234ABC          "),
        ("%-#20.8o", json!(668), "00001234            "),
        ("%0-5d", json!(7), "7    "),
        ("%#04x", json!(256), "0x0100"),
        // Characters and quoted characters.
        ("%c", json!(0x78), "x"),
        ("%c", json!(0xe4), "ä"),
        ("%c", json!(0x672c), "本"),
        ("%.0c", json!(0x2318), "⌘"),
        ("%3c", json!(0x2318), "  ⌘"),
        ("%-3c", json!(0x2318), "⌘  "),
        ("%c", json!(-1), "\u{fffd}"),
        ("%c", json!(0xDC80), "\u{fffd}"),
        ("%c", json!(0x110000), "\u{fffd}"),
        ("%q", json!(0), r"'\x00'"),
        ("%q", json!(0x22), r#"'"'"#),
        ("%q", json!(0x27), r"'\''"),
        ("%q", json!(0x78), "'x'"),
        ("%q", json!(0xff), "'ÿ'"),
        ("%+q", json!(0xff), r"'\u00ff'"),
        ("%q", json!(0x0a), r"'\n'"),
        ("%q", json!(0x263a), "'☺'"),
        ("%+q", json!(0x263a), r"'\u263a'"),
        ("%10q", json!(0x2318), "       '⌘'"),
        ("%+10q", json!(0x2318), r"  '\u2318'"),
        ("%-10q", json!(0x2318), "'⌘'       "),
        ("%010q", json!(0x2318), "0000000'⌘'"),
        ("%-010q", json!(0x2318), "'⌘'       "),
        ("%q", json!(0x10ffff), r"'\U0010ffff'"),
        ("%q", json!(-1), "'\u{fffd}'"),
        // Unicode format.
        ("%U", json!(0), "U+0000"),
        ("%U", json!(-1), "U+FFFFFFFFFFFFFFFF"),
        ("%U", json!(0x0a), "U+000A"),
        ("%#U", json!(0x0a), "U+000A"),
        ("%+U", json!(0x78), "U+0078"),
        ("%# U", json!(0x78), "U+0078 'x'"),
        ("%#.2U", json!(0x78), "U+0078 'x'"),
        ("%#U", json!(0x263a), "U+263A '☺'"),
        ("%U", json!(0x1D6C2), "U+1D6C2"),
        ("%#14.6U", json!(0x2318), "  U+002318 '⌘'"),
        ("%#-14.6U", json!(0x2318), "U+002318 '⌘'  "),
        ("%#014.6U", json!(0x2318), "  U+002318 '⌘'"),
        // Verbs that ints do not take.
        ("%s", json!(5), "%!s(int=5)"),
        ("%t", json!(5), "%!t(int=5)"),
        ("%f", json!(3), "%!f(int=3)"),
        ("%+s", json!(5), "%!s(int=+5)"),
    ]);
}

#[test]
fn floats() {
    check(&[
        ("%v", json!(1.2345678), "1.2345678"),
        ("%v", json!(1.5), "1.5"),
        ("%v", json!(123456789.0), "1.23456789e+08"),
        ("%v", json!(100000.0), "100000"),
        ("%v", json!(0.0001), "0.0001"),
        ("%v", json!(0.00001), "1e-05"),
        ("%v", json!(0.0), "0"),
        ("%+.3e", json!(0.0), "+0.000e+00"),
        ("%+.3e", json!(1.0), "+1.000e+00"),
        ("%+.3f", json!(-1.0), "-1.000"),
        ("%+.3F", json!(-1.0), "-1.000"),
        ("%+07.2f", json!(1.0), "+001.00"),
        ("%+07.2f", json!(-1.0), "-001.00"),
        ("%-07.2f", json!(1.0), "1.00   "),
        ("%-07.2f", json!(-1.0), "-1.00  "),
        ("%+-07.2f", json!(1.0), "+1.00  "),
        ("%+10.2f", json!(1.0), "     +1.00"),
        ("% .3E", json!(-1.0), "-1.000E+00"),
        ("% .3e", json!(1.0), " 1.000e+00"),
        ("%+.3g", json!(0.0), "+0"),
        ("%+.3g", json!(1.0), "+1"),
        ("%+.3g", json!(-1.0), "-1"),
        ("% .3g", json!(1.0), " 1"),
        ("%b", json!(1.0), "4503599627370496p-52"),
        ("%.4b", json!(-1.0), "-4503599627370496p-52"),
        ("%#b", json!(1.0), "4503599627370496p-52"),
        ("%#g", json!(1e-323), "1.00000e-323"),
        ("%#g", json!(-1.0), "-1.00000"),
        ("%#g", json!(1.1), "1.10000"),
        ("%#g", json!(123456.0), "123456."),
        ("%#g", json!(1234567.0), "1.234567e+06"),
        ("%#g", json!(1230000.0), "1.23000e+06"),
        ("%#g", json!(1000000.0), "1.00000e+06"),
        ("%#.0f", json!(1.0), "1."),
        ("%#.0e", json!(1.0), "1.e+00"),
        ("%#.0g", json!(1.0), "1."),
        ("%#.0g", json!(1100000.0), "1.e+06"),
        ("%#.4f", json!(1.0), "1.0000"),
        ("%#.4e", json!(1.0), "1.0000e+00"),
        ("%#.4g", json!(1.0), "1.000"),
        ("%#.4g", json!(100000.0), "1.000e+05"),
        ("%#.4g", json!(1.234), "1.234"),
        ("%#.4g", json!(0.1234), "0.1234"),
        ("%#.4g", json!(1.23), "1.230"),
        ("%#.4g", json!(0.123), "0.1230"),
        ("%#.4g", json!(10.2), "10.20"),
        ("%#.4g", json!(0.0), "0.000"),
        ("%#.4g", json!(0.012), "0.01200"),
        ("%#.0f", json!(123.0), "123."),
        ("%#.0e", json!(123.0), "1.e+02"),
        ("%#.4e", json!(123.0), "1.2300e+02"),
        ("%#.4g", json!(123.0), "123.0"),
        ("%#.4g", json!(123000.0), "1.230e+05"),
        ("%#9.4g", json!(1.0), "    1.000"),
        ("%e", json!(1.0), "1.000000e+00"),
        ("%e", json!(1234.5678e3), "1.234568e+06"),
        ("%e", json!(1234.5678e-8), "1.234568e-05"),
        ("%e", json!(-7.0), "-7.000000e+00"),
        ("%e", json!(-1e-9), "-1.000000e-09"),
        ("%f", json!(1234.5678e3), "1234567.800000"),
        ("%f", json!(1234.5678e-8), "0.000012"),
        ("%f", json!(-7.0), "-7.000000"),
        ("%f", json!(-1e-9), "-0.000000"),
        ("%g", json!(1234.5678e3), "1.2345678e+06"),
        ("%g", json!(1234.5678e-8), "1.2345678e-05"),
        ("%g", json!(-7.0), "-7"),
        ("%g", json!(-1e-9), "-1e-09"),
        ("%E", json!(1234.5678e-8), "1.234568E-05"),
        ("%G", json!(1234.5678e3), "1.2345678E+06"),
        ("%G", json!(-1e-9), "-1E-09"),
        ("%20.6e", json!(1.2345e3), "        1.234500e+03"),
        ("%20e", json!(1.2345e-3), "        1.234500e-03"),
        ("%20.8e", json!(1.2345e3), "      1.23450000e+03"),
        ("%20f", json!(1.23456789e3), "         1234.567890"),
        ("%20f", json!(1.23456789e-3), "            0.001235"),
        ("%20f", json!(12345678901.23456789), "  12345678901.234568"),
        ("%-20f", json!(1.23456789e3), "1234.567890         "),
        ("%20.8f", json!(1.23456789e-3), "          0.00123457"),
        ("%g", json!(1.23456789e3), "1234.56789"),
        ("%g", json!(1.23456789e-3), "0.00123456789"),
        ("%g", json!(1.23456789e20), "1.23456789e+20"),
        ("%.2f", json!(1.0), "1.00"),
        ("% .2f", json!(1.0), " 1.00"),
        ("%7.2f", json!(-1.0), "  -1.00"),
        ("% +7.2f", json!(1.0), "  +1.00"),
        ("%07.2f", json!(1.0), "0001.00"),
        ("% 07.2f", json!(1.0), " 001.00"),
        ("% +07.2f", json!(-1.0), "-001.00"),
        ("%-05.1f", json!(1.0), "1.0  "),
        // Ties round to even, on the float's exact value.
        ("%.0f", json!(0.5), "0"),
        ("%.0f", json!(1.5), "2"),
        ("%.0f", json!(2.5), "2"),
        ("%.2f", json!(0.125), "0.12"),
        ("%.1f", json!(0.05), "0.1"),
        ("%.1f", json!(0.96), "1.0"),
        ("%.2e", json!(9.999), "1.00e+01"),
        // Verbs that floats do not take.
        ("%d", json!(1.5), "%!d(float64=1.5)"),
        ("%s", json!(2.0), "%!s(float64=2)"),
        ("%q", json!(1.5), "%!q(float64=1.5)"),
    ]);
    assert_eq!(sprintf("%.68f", &[json!(-1.0)]).unwrap(), format!("-1.{}", "0".repeat(68)));
    assert_eq!(sprintf("%068d", &[json!(-1)]).unwrap(), format!("-{}1", "0".repeat(66)));
}

#[test]
fn strings() {
    check(&[
        ("%s", json!("abc"), "abc"),
        ("%v", json!("abc"), "abc"),
        ("%x", json!("abc"), "616263"),
        ("%x", json!(""), ""),
        ("% x", json!(""), ""),
        ("%#x", json!(""), ""),
        ("%X", json!("xyz"), "78797A"),
        ("% X", json!("xyz"), "78 79 7A"),
        ("%#x", json!("xyz"), "0x78797a"),
        ("%#X", json!("xyz"), "0X78797A"),
        ("%# x", json!("xyz"), "0x78 0x79 0x7a"),
        ("%# X", json!("xyz"), "0X78 0X79 0X7A"),
        ("%2x", json!(""), "  "),
        ("% 02x", json!(""), "00"),
        ("%-02x", json!(""), "  "),
        ("%8x", json!("\u{7f}"), "      7f"),
        ("%#08x", json!("\u{7f}"), "00000x7f"),
        ("% 10x", json!("ab"), "     61 62"),
        ("%# 10x", json!("ab"), " 0x61 0x62"),
        ("%# -010X", json!("ab"), "0X61 0X62 "),
        ("%.5x", json!("abcdefghijklmnopqrstuvwxyz"), "6162636465"),
        ("%.1x", json!("日本語"), "e6"),
        ("%q", json!(""), r#""""#),
        ("%#q", json!(""), "``"),
        ("%q", json!("\""), r#""\"""#),
        ("%#q", json!("\""), "`\"`"),
        ("%q", json!("`"), "\"`\""),
        ("%#q", json!("`"), "\"`\""),
        ("%q", json!("\n"), r#""\n""#),
        ("%#q", json!("\n"), r#""\n""#),
        ("%q", json!(r"\n"), r#""\\n""#),
        ("%#q", json!(r"\n"), r"`\n`"),
        ("%q", json!("日本語"), r#""日本語""#),
        ("%+q", json!("日本語"), r#""\u65e5\u672c\u8a9e""#),
        ("%#q", json!("日本語"), "`日本語`"),
        ("%#+q", json!("日本語"), "`日本語`"),
        ("%q", json!("\u{7}\u{8}\u{c}\n\r\t\u{b}\"\\"), r#""\a\b\f\n\r\t\v\"\\""#),
        ("%q", json!("\u{1}\u{7f}"), r#""\x01\x7f""#),
        ("% q", json!("☺"), "\"☺\""),
        ("%+q", json!("☺"), r#""\u263a""#),
        ("%10q", json!("⌘"), "       \"⌘\""),
        ("%+10q", json!("⌘"), r#"  "\u2318""#),
        ("%-10q", json!("⌘"), "\"⌘\"       "),
        ("%010q", json!("⌘"), "0000000\"⌘\""),
        ("%+010q", json!("⌘"), r#"00"\u2318""#),
        ("%#8q", json!("\n"), r#"    "\n""#),
        ("%#-8q", json!("\t"), "`\t`     "),
        ("%q", json!("\u{10ffff}"), r#""\U0010ffff""#),
        ("%#q", json!("\u{10ffff}"), "`\u{10ffff}`"),
        ("%q", json!("\u{feff}"), r#""\ufeff""#),
        ("%5s", json!("abc"), "  abc"),
        ("%2s", json!("\u{263a}"), " ☺"),
        ("%-5s", json!("abc"), "abc  "),
        ("%05s", json!("abc"), "00abc"),
        ("%0-5s", json!("abc"), "abc  "),
        ("%5s", json!("abcdefghijklmnopqrstuvwxyz"), "abcdefghijklmnopqrstuvwxyz"),
        ("%.5s", json!("abcdefghijklmnopqrstuvwxyz"), "abcde"),
        ("%.0s", json!("日本語日本語"), ""),
        ("%.5s", json!("日本語日本語"), "日本語日本"),
        ("%.10s", json!("日本語日本語"), "日本語日本語"),
        ("%08q", json!("abc"), "000\"abc\""),
        ("%-8q", json!("abc"), "\"abc\"   "),
        ("%.5q", json!("abcdefghijklmnopqrstuvwxyz"), "\"abcde\""),
        ("%.3q", json!("日本語日本語"), "\"日本語\""),
        ("%10.1q", json!("日本語日本語"), "       \"日\""),
        ("%20.5s", json!("qwertyuiop"), "               qwert"),
        ("%-20.5s", json!("qwertyuiop"), "qwert               "),
        // Verbs that strings do not take; the value prints with the verb's flags.
        ("%d", json!("abc"), "%!d(string=abc)"),
        ("%5d", json!("ab"), "%!d(string=   ab)"),
        ("%t", json!("abc"), "%!t(string=abc)"),
        ("%f", json!("abc"), "%!f(string=abc)"),
    ]);
}

#[test]
fn bools_nil_and_types() {
    check(&[
        ("%t", json!(true), "true"),
        ("%v", json!(false), "false"),
        ("%d", json!(true), "%!d(bool=true)"),
        ("%s", json!(false), "%!s(bool=false)"),
        ("%v", Value::Null, "<nil>"),
        ("%10v", Value::Null, "     <nil>"),
        ("%-10v", Value::Null, "<nil>     "),
        ("%d", Value::Null, "%!d(<nil>)"),
        ("%s", Value::Null, "%!s(<nil>)"),
        ("%#v", Value::Null, "<nil>"),
        ("%T", json!(0), "int"),
        ("%T", json!(1.5), "float64"),
        ("%T", json!("x"), "string"),
        ("%T", json!(true), "bool"),
        ("%T", json!([1]), "[]interface {}"),
        ("%T", json!({"a": 1}), "map[string]interface {}"),
        ("%10T", Value::Null, "     <nil>"),
        ("%-10T", Value::Null, "<nil>     "),
        ("%6T", json!(1), "   int"),
    ]);
}

#[test]
fn lists_and_maps_apply_the_verb_to_each_element() {
    check(&[
        ("%v", json!([1, "hello", 2.5, null]), "[1 hello 2.5 <nil>]"),
        ("%v", json!([]), "[]"),
        ("%d", json!([1, 2, 15]), "[1 2 15]"),
        ("%x", json!([1, 2, 15]), "[1 2 f]"),
        ("%#x", json!([1, 2, 15]), "[0x1 0x2 0xf]"),
        ("%q", json!(["a", "b"]), r#"["a" "b"]"#),
        ("%x", json!(["ab", "c"]), "[6162 63]"),
        ("%6v", json!([1, 11, 111]), "[     1     11    111]"),
        ("%06v", json!([1, 11, 111]), "[000001 000011 000111]"),
        ("%-6v", json!([1, 11, 111]), "[1      11     111   ]"),
        ("% d", json!([1, 11, 111]), "[ 1  11  111]"),
        ("%+d", json!([1, 11, 111]), "[+1 +11 +111]"),
        ("%06v", json!([10.0, 10]), "[000010 000010]"),
        ("%06v", json!([-10.0, 10]), "[-00010 000010]"),
        ("%03.6v", json!([1, 2.0, "x"]), "[000001 002 00x]"),
        ("%03.0v", json!([0, 2.0, "x"]), "[    002 000]"),
        ("%d", json!(["a", 1]), "[%!d(string=a) 1]"),
        ("%d", json!([null]), "[<nil>]"),
        ("%5v", json!([null]), "[<nil>]"),
        ("%v", json!({"b": 2, "a": 1}), "map[a:1 b:2]"),
        ("%v", json!({}), "map[]"),
        ("%v", json!({"k": [1, {"x": null}]}), "map[k:[1 map[x:<nil>]]]"),
        ("%d", json!({"a": 1}), "map[%!d(string=a):1]"),
        ("%5v", json!({"a": 1}), "map[    a:    1]"),
        ("%#v", json!("foo"), r#""foo""#),
        ("%#v", json!(1000000000), "1000000000"),
        ("%#v", json!(1.0), "1"),
        ("%#v", json!(1000000.0), "1e+06"),
        ("%#v", json!(["a", "b"]), r#"[]interface {}{"a", "b"}"#),
        ("%#v", json!([1, "hello", 2.5, null]), r#"[]interface {}{1, "hello", 2.5, interface {}(nil)}"#),
        ("%#v", json!({"b": [], "a": 1}), r#"map[string]interface {}{"a":1, "b":[]interface {}{}}"#),
        ("%+v", json!({"a": 5}), "map[a:5]"),
    ]);
}

#[test]
fn format_errors_print_like_go() {
    let f = |format: &str, args: Value| sprintf(format, args.as_array().unwrap()).unwrap();
    assert_eq!(f("", json!([null])), "%!(EXTRA <nil>)");
    assert_eq!(f("", json!([2])), "%!(EXTRA int=2)");
    assert_eq!(f("no args", json!(["hello"])), "no args%!(EXTRA string=hello)");
    assert_eq!(f("%d", json!([1, "x", 2.5])), "1%!(EXTRA string=x, float64=2.5)");
    // Extra operands print without the last verb's flags.
    assert_eq!(f("%010.2", json!(["12345"])), "%!(NOVERB)%!(EXTRA string=12345)");
    assert_eq!(f("%s %", json!(["hello"])), "hello %!(NOVERB)");
    assert_eq!(f("%s %.2", json!(["hello"])), "hello %!(NOVERB)");
    assert_eq!(f("%d %d", json!([1])), "1 %!d(MISSING)");
    assert_eq!(f("%s", json!([])), "%!s(MISSING)");
    assert_eq!(f("%017091901790959340919092959340919017929593813360", json!([0])), "%!(NOVERB)%!(EXTRA int=0)");
    assert_eq!(f("%2147483648d", json!([42])), "%!(NOVERB)%!(EXTRA int=42)");
    assert_eq!(f("%.2147483648d", json!([42])), "%!(NOVERB)%!(EXTRA int=42)");
    // Percent takes no operand and ignores flags.
    assert_eq!(f("%d%%", json!([50])), "50%");
    assert_eq!(f("%5%", json!([])), "%");
}

#[test]
fn star_width_and_precision() {
    let f = |format: &str, args: Value| sprintf(format, args.as_array().unwrap()).unwrap();
    assert_eq!(f("%*d", json!([4, 42])), "  42");
    assert_eq!(f("%-*d|", json!([4, 42])), "42  |");
    assert_eq!(f("%*d|", json!([-4, 42])), "42  |");
    assert_eq!(f("%.*f", json!([2, 3.14159])), "3.14");
    assert_eq!(f("%*.*f", json!([8, 3, 3.14159])), "   3.142");
    assert_eq!(f("%.*s", json!([3, "abcdef"])), "abc");
    assert_eq!(f("%*d", json!(["4", 42])), "%!(BADWIDTH)42");
    assert_eq!(f("%*d", json!([10_000_000, 42])), "%!(BADWIDTH)42");
    assert_eq!(f("%.*d", json!([-1, 42])), "%!(BADPREC)42");
    assert_eq!(f("%*d", json!([])), "%!(BADWIDTH)%!d(MISSING)");
}

#[test]
fn unsupported_verbs_are_errors() {
    for (format, args, mentions) in [
        ("%z", json!([1]), "unknown verb %z"),
        ("%z", json!([]), "unknown verb %z"),
        ("%!", json!([1]), "unknown verb %!"),
        ("%-5k|", json!(["x"]), "unknown verb %k"),
        ("%p", json!([[1]]), "%p"),
        ("%w", json!(["x"]), "%w"),
        ("%[1]d", json!([1]), "argument indexes"),
        ("%x", json!([1.5]), "hexadecimal floating point"),
        ("%X", json!([[1, 2.5]]), "hexadecimal floating point"),
    ] {
        let err = sprintf(format, args.as_array().unwrap()).unwrap_err();
        assert!(err.contains(mentions), "Sprintf({format:?}): {err}");
    }
}

#[test]
fn sprint_spaces_operands_unless_one_is_a_string() {
    assert_eq!(sprint(&[json!("a"), json!("b")]), "ab");
    assert_eq!(sprint(&[json!("a"), json!(1)]), "a1");
    assert_eq!(sprint(&[json!(1), json!("a")]), "1a");
    assert_eq!(sprint(&[json!(1), json!(2), json!(true)]), "1 2 true");
    assert_eq!(sprint(&[json!(3.0), Value::Null, json!([1, "x"])]), "3 <nil> [1 x]");
    assert_eq!(sprintln(&[json!("a"), json!("b"), json!(1)]), "a b 1\n");
    assert_eq!(sprintln(&[]), "\n");
}

#[test]
fn precisions_beyond_rusts_formatter_are_gos() {
    // Go takes a precision up to ≈1e7 and writes every digit: the exact ones, then zeros.
    let zeros = |n: usize| "0".repeat(n);
    let f = |format: &str, v: Value| sprintf(format, &[v]).unwrap();
    assert_eq!(f("%.70000f", json!(1.5)), format!("1.5{}", zeros(69_999)));
    assert_eq!(f("%5.1777777f", json!(0.1)).len(), 2 + 1_777_777);
    // 0.1's exact binary value has 55 decimal places; the rest are zeros.
    let tenth = f("%.70000f", json!(0.1));
    assert!(tenth.starts_with("0.1000000000000000055511151231257827021181583404541015625000"), "{}", &tenth[..80]);
    assert_eq!(tenth.len(), 2 + 70_000);
    assert_eq!(f("%.70000e", json!(1.5)), format!("1.5{}e+00", zeros(69_999)));
    assert_eq!(f("%.70000g", json!(1.5)), "1.5");
    assert_eq!(f("%.70000U", json!(0x41)), format!("U+{}41", zeros(69_998)));
}
