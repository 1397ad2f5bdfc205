//! The query protocol's messages: bind values, the answer of `/queries/v1/query-request`, its
//! columns and chunks.

use std::collections::HashMap;

use connections_core::Param;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SnowflakeError;

/// A value bound to a `?` or `:name` placeholder, sent to the server as a typed binding.
///
/// ```
/// use connections_snowflake::Binding;
/// assert_eq!(Binding::from("Jerry"), Binding::Text("Jerry".into()));
/// assert_eq!(Binding::date(2024, 2, 29), Binding::Date { days: 19782 });
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Binding {
    /// NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// NUMBER (FIXED).
    Int(i64),
    /// FLOAT (REAL).
    Float(f64),
    /// TEXT.
    Text(String),
    /// BINARY.
    Binary(Vec<u8>),
    /// DATE: days since 1970-01-01.
    Date {
        /// Days since the epoch.
        days: i32,
    },
    /// TIME: nanoseconds since midnight.
    Time {
        /// Nanoseconds since midnight.
        nanos: i64,
    },
    /// TIMESTAMP_NTZ: nanoseconds since 1970-01-01 00:00 (wall clock, no zone).
    TimestampNtz {
        /// Nanoseconds since the epoch.
        nanos: i64,
    },
    /// TIMESTAMP_TZ: an instant (nanoseconds since the epoch, UTC) and its offset in minutes.
    TimestampTz {
        /// Nanoseconds since the epoch, UTC.
        nanos: i64,
        /// The offset from UTC, in minutes.
        offset_minutes: i32,
    },
}

impl Binding {
    /// A DATE from its year, month and day (proleptic Gregorian).
    pub fn date(year: i32, month: u32, day: u32) -> Self {
        Self::Date { days: days_from_civil(year, month, day) }
    }

    /// The binding's Snowflake type and its value as the protocol spells it.
    pub(crate) fn wire(&self) -> Value {
        let (kind, value) = match self {
            Self::Null => ("ANY", Value::Null),
            Self::Bool(b) => ("BOOLEAN", json!(b.to_string())),
            Self::Int(n) => ("FIXED", json!(n.to_string())),
            Self::Float(x) => ("REAL", json!(x.to_string())),
            Self::Text(s) => ("TEXT", json!(s)),
            Self::Binary(b) => ("BINARY", json!(hex(b))),
            Self::Date { days } => ("DATE", json!((i64::from(*days) * 86_400_000).to_string())),
            Self::Time { nanos } => ("TIME", json!(nanos.to_string())),
            Self::TimestampNtz { nanos } => ("TIMESTAMP_NTZ", json!(nanos.to_string())),
            Self::TimestampTz { nanos, offset_minutes } => {
                ("TIMESTAMP_TZ", json!(format!("{nanos} {}", offset_minutes + 1440)))
            }
        };
        json!({ "type": kind, "value": value })
    }

    /// The binding as a query-cache parameter: `(name suffix, value)`. Types the core's `Param`
    /// lacks travel as text with their type in the suffix.
    pub(crate) fn to_param(&self) -> (&'static str, Param) {
        match self {
            Self::Null => ("", Param::Null),
            Self::Bool(b) => ("", Param::Bool(*b)),
            Self::Int(n) => ("", Param::I64(*n)),
            Self::Float(x) => ("", Param::F64(*x)),
            Self::Text(s) => ("", Param::Str(s.clone())),
            Self::Binary(b) => ("", Param::Bytes(b.clone())),
            Self::Date { days } => ("::DATE", Param::Str(days.to_string())),
            Self::Time { nanos } => ("::TIME", Param::Str(nanos.to_string())),
            Self::TimestampNtz { nanos } => ("::TIMESTAMP_NTZ", Param::Str(nanos.to_string())),
            Self::TimestampTz { nanos, offset_minutes } => {
                ("::TIMESTAMP_TZ", Param::Str(format!("{nanos} {offset_minutes}")))
            }
        }
    }

    /// The binding of a query-cache parameter named `name` (see [`to_param`](Self::to_param)):
    /// the name without its type suffix, and the value.
    pub(crate) fn from_param(name: &str, param: &Param) -> Result<(String, Self), String> {
        let (base, kind) = name.split_once("::").unwrap_or((name, ""));
        let text = || match param {
            Param::Str(s) => Ok(s.as_str()),
            _ => Err(format!("parameter `{base}`: a {kind} travels as text")),
        };
        let int = |s: &str| s.parse::<i64>().map_err(|_| format!("parameter `{base}`: not a {kind}"));
        let binding = match kind {
            "" => match param {
                Param::Null => Self::Null,
                Param::Bool(b) => Self::Bool(*b),
                Param::I64(n) => Self::Int(*n),
                Param::F64(x) => Self::Float(*x),
                Param::Str(s) => Self::Text(s.clone()),
                Param::Bytes(b) => Self::Binary(b.clone()),
                other => return Err(format!("parameter `{base}`: values of type {other} cannot be bound")),
            },
            "DATE" => Self::Date {
                days: i32::try_from(int(text()?)?).map_err(|_| format!("parameter `{base}`: date out of range"))?,
            },
            "TIME" => Self::Time { nanos: int(text()?)? },
            "TIMESTAMP_NTZ" => Self::TimestampNtz { nanos: int(text()?)? },
            "TIMESTAMP_TZ" => {
                let (nanos, offset) =
                    text()?.split_once(' ').ok_or_else(|| format!("parameter `{base}`: malformed"))?;
                let offset_minutes =
                    i32::try_from(int(offset)?).map_err(|_| format!("parameter `{base}`: bad offset"))?;
                Self::TimestampTz { nanos: int(nanos)?, offset_minutes }
            }
            _ => Self::Text(text()?.to_owned()),
        };
        Ok((base.to_owned(), binding))
    }
}

macro_rules! binding_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Binding {
            fn from(value: $t) -> Self {
                Self::$variant((value $(as $cast)?).into())
            }
        }
    )*};
}

binding_from! {
    bool => Bool,
    i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64,
    f32 => Float as f64, f64 => Float,
    String => Text, &str => Text, &String => Text,
    Vec<u8> => Binary, &[u8] => Binary,
}

impl<T: Into<Binding>> From<Option<T>> for Binding {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i32::try_from(month).unwrap_or(1);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i32::try_from(day).unwrap_or(1) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One column of a result, as `rowtype` describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Column {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) scale: Option<i64>,
    #[serde(default)]
    pub(crate) precision: Option<i64>,
}

/// A part of a result to download.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Chunk {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) row_count: Option<u64>,
}

/// The `data` of a query's answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryData {
    #[serde(default)]
    pub(crate) rowtype: Vec<Column>,
    #[serde(default)]
    pub(crate) rowset_base64: Option<String>,
    #[serde(default)]
    pub(crate) rowset: Option<Vec<Vec<Value>>>,
    #[serde(default)]
    pub(crate) query_result_format: Option<String>,
    #[serde(default)]
    pub(crate) query_id: Option<String>,
    #[serde(default)]
    pub(crate) statement_type_id: Option<i64>,
    #[serde(default)]
    pub(crate) chunks: Vec<Chunk>,
    #[serde(default)]
    pub(crate) chunk_headers: Option<HashMap<String, String>>,
    #[serde(default)]
    pub(crate) qrmk: Option<String>,
    /// The query ids of the statements of a multi-statement request, comma-separated.
    #[serde(default)]
    pub(crate) result_ids: Option<String>,
}

impl QueryData {
    /// The answer's data, read.
    pub(crate) fn parse(data: Value) -> Result<Self, SnowflakeError> {
        serde_json::from_value(data)
            .map_err(|e| SnowflakeError::protocol("query", format!("malformed query answer: {e}")))
    }

    /// Whether the statement is DML (insert, update, delete, merge, multi-table insert): its
    /// result holds row counts.
    pub(crate) fn is_dml(&self) -> bool {
        self.statement_type_id.is_some_and(|id| (0x3000..0x4000).contains(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn wire_and_cache_forms_round_trip() {
        for b in [
            Binding::Null,
            Binding::Bool(true),
            Binding::Int(-3),
            Binding::Float(1.5),
            Binding::Text("x".into()),
            Binding::Binary(vec![1, 255]),
            Binding::Date { days: 3 },
            Binding::Time { nanos: 5 },
            Binding::TimestampNtz { nanos: 7 },
            Binding::TimestampTz { nanos: 9, offset_minutes: -60 },
        ] {
            let (suffix, param) = b.to_param();
            let (name, back) = Binding::from_param(&format!("p{suffix}"), &param).unwrap();
            assert_eq!((name.as_str(), &back), ("p", &b));
        }
        assert_eq!(Binding::Binary(vec![1, 255]).wire()["value"], "01FF");
        assert_eq!(Binding::TimestampTz { nanos: 9, offset_minutes: -60 }.wire()["value"], "9 1380");
    }
}
