//! Query parameter values.

use std::fmt;
use std::hash::{Hash, Hasher};

/// A value bound to a query parameter.
///
/// Parameters are part of the query cache key, so `Param` is `Eq` and `Hash` (floats compare by
/// their bits: `0.0` and `-0.0` are different keys, `NaN` equals itself).
///
/// ```
/// use connections_core::Param;
/// assert_eq!(Param::from("Jerry"), Param::Str("Jerry".into()));
/// assert_eq!(Param::from(Some(3_i64)), Param::I64(3));
/// assert_eq!(Param::from(None::<i64>), Param::Null);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Param {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// Text.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Param {
    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::I64(_) => "integer",
            Self::F64(_) => "float",
            Self::Str(_) => "string",
            Self::Bytes(_) => "bytes",
        }
    }
}

impl PartialEq for Param {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) => true,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::I64(a), Self::I64(b)) => a == b,
            (Self::F64(a), Self::F64(b)) => a.to_bits() == b.to_bits(),
            (Self::Str(a), Self::Str(b)) => a == b,
            (Self::Bytes(a), Self::Bytes(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Param {}

impl Hash for Param {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Self::Null => {}
            Self::Bool(b) => b.hash(state),
            Self::I64(i) => i.hash(state),
            Self::F64(x) => x.to_bits().hash(state),
            Self::Str(s) => s.hash(state),
            Self::Bytes(b) => b.hash(state),
        }
    }
}

impl fmt::Display for Param {
    /// The value's type only: parameters may be secrets, so their values are never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

macro_rules! param_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Param {
            fn from(value: $t) -> Self {
                Self::$variant((value $(as $cast)?).into())
            }
        }
    )*};
}

param_from! {
    bool => Bool,
    i8 => I64 as i64, i16 => I64 as i64, i32 => I64 as i64, i64 => I64,
    u8 => I64 as i64, u16 => I64 as i64, u32 => I64 as i64,
    f32 => F64 as f64, f64 => F64,
    String => Str, &str => Str, &String => Str,
    Vec<u8> => Bytes, &[u8] => Bytes,
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn usable_as_cache_key() {
        let set: HashSet<Param> =
            [Param::from(1.5), Param::from(1.5), Param::from(f64::NAN), Param::from(f64::NAN)].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_ne!(Param::from(1_i64), Param::from(1.0));
        assert_ne!(Param::from(0.0), Param::from(-0.0));
    }

    #[test]
    fn display_hides_the_value() {
        assert_eq!(Param::from("hunter2").to_string(), "string");
    }
}
