//! text/template's comparison functions `eq ne lt le gt ge` with Go's rules: only basic kinds
//! (bool, int, float, string) compare, and only with the same kind (an int is never equal to a
//! float, `lt 1 1.5` is an error); lists and maps do not compare; nil (a JSON null or a missing
//! field) equals only nil, and `eq` of nil and another value is false rather than an error.
use std::cmp::Ordering;

use serde_json::Value;

/// Why a comparison cannot be made, worded as Go words it.
pub(super) type CompareError = &'static str;

/// Go's `basicKind`, with the values that have none.
#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    String,
    Nil,
    /// Lists and maps.
    Composite,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Nil,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::String(_) => Kind::String,
        Value::Array(_) | Value::Object(_) => Kind::Composite,
    }
}

/// `eq a b c ...`: whether `a` equals any of the others.
pub(super) fn eq(first: &Value, others: &[Value]) -> Result<bool, CompareError> {
    if others.is_empty() {
        return Err("missing argument for comparison");
    }
    for other in others {
        let equal = match (kind(first), kind(other)) {
            (Kind::Nil, Kind::Nil) => true,
            (Kind::Nil, _) | (_, Kind::Nil) => false,
            (Kind::Composite, Kind::Composite) => return Err("non-comparable type"),
            (a, b) if a != b => return Err("incompatible types for comparison"),
            _ => compare_basic(first, other) == Some(Ordering::Equal),
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lt a b`.
pub(super) fn lt(a: &Value, b: &Value) -> Result<bool, CompareError> {
    match (kind(a), kind(b)) {
        (Kind::Nil | Kind::Composite | Kind::Bool, _) | (_, Kind::Nil | Kind::Composite | Kind::Bool) => {
            Err("invalid type for comparison")
        }
        (ka, kb) if ka != kb => Err("incompatible types for comparison"),
        _ => Ok(compare_basic(a, b) == Some(Ordering::Less)),
    }
}

/// `le a b`: lt or eq.
pub(super) fn le(a: &Value, b: &Value) -> Result<bool, CompareError> {
    Ok(lt(a, b)? || eq(a, std::slice::from_ref(b))?)
}

/// Two values of the same basic kind.
fn compare_basic(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Number(x), Value::Number(y)) if x.is_f64() => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // Integers as i128: u64 and i64 values compare by value, as Go's int/uint special case.
        (Value::Number(x), Value::Number(y)) => integer(x)?.partial_cmp(&integer(y)?),
        _ => None,
    }
}

fn integer(n: &serde_json::Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn same_kinds_compare() {
        assert_eq!(eq(&json!(1), &[json!(1)]), Ok(true));
        assert_eq!(eq(&json!("a"), &[json!("b"), json!("a")]), Ok(true));
        assert_eq!(eq(&json!("a"), &[json!("b"), json!("c")]), Ok(false));
        assert_eq!(eq(&json!(true), &[json!(true)]), Ok(true));
        assert_eq!(eq(&json!(1.5), &[json!(1.5)]), Ok(true));
        assert_eq!(eq(&json!(u64::MAX), &[json!(-1)]), Ok(false));
        assert_eq!(lt(&json!(-1), &json!(u64::MAX)), Ok(true));
        assert_eq!(lt(&json!("a"), &json!("b")), Ok(true));
        assert_eq!(lt(&json!(2.5), &json!(1.5)), Ok(false));
        assert_eq!(le(&json!(2), &json!(2)), Ok(true));
    }

    #[test]
    fn nil_equals_only_nil() {
        assert_eq!(eq(&Value::Null, &[Value::Null]), Ok(true));
        assert_eq!(eq(&Value::Null, &[json!("x")]), Ok(false));
        assert_eq!(eq(&json!(0), &[Value::Null]), Ok(false));
        assert_eq!(lt(&Value::Null, &json!(1)), Err("invalid type for comparison"));
    }

    #[test]
    fn other_comparisons_are_errors() {
        assert_eq!(eq(&json!(1), &[json!(1.0)]), Err("incompatible types for comparison"));
        assert_eq!(eq(&json!(1), &[json!("1")]), Err("incompatible types for comparison"));
        assert_eq!(eq(&json!([1]), &[json!("x")]), Err("incompatible types for comparison"));
        assert_eq!(eq(&json!([1]), &[json!([1])]), Err("non-comparable type"));
        assert_eq!(eq(&json!(1), &[]), Err("missing argument for comparison"));
        assert_eq!(lt(&json!(1), &json!(1.5)), Err("incompatible types for comparison"));
        assert_eq!(lt(&json!(true), &json!(false)), Err("invalid type for comparison"));
        assert_eq!(lt(&json!({}), &json!(1)), Err("invalid type for comparison"));
    }
}
