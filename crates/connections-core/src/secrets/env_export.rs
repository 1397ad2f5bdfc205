//! Opt-in export of top-level string and number secrets to the process environment, as
//! Streamlit does for every app.
//!
//! `std::env::set_var` is unsafe in a program with several threads that read the environment,
//! so this runs only when a store is built with `export_env(true)`, which an application should
//! do before it starts threads (the CLI does).

#![allow(unsafe_code)] // the one place that writes the process environment

use std::collections::BTreeMap;

use toml::{Table, Value};

/// The variables a store exported, with the text it set, so a reload can take back only what
/// nobody changed since.
pub(crate) type Exported = BTreeMap<String, String>;

/// The variables Streamlit would export for these secrets: top-level strings, integers and
/// floats (not booleans, dates, arrays or tables), formatted as Python's `str()` does.
pub(crate) fn exportable(table: &Table) -> Exported {
    table
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                Value::Float(x) => python_float(*x),
                _ => return None,
            };
            valid_name(k).then(|| (k.clone(), text))
        })
        .collect()
}

/// Removes what a previous export set, where the variable still holds that text, then exports
/// the new values. Returns what is now exported.
pub(crate) fn replace(previous: &Exported, next: Exported) -> Exported {
    for (key, text) in previous {
        if std::env::var_os(key).is_some_and(|now| now == text.as_str()) {
            // SAFETY: opt-in; the store's owner promised (by calling `export_env(true)`) that no
            // other thread reads or writes the environment concurrently.
            unsafe { std::env::remove_var(key) };
        }
    }
    for (key, text) in &next {
        // SAFETY: as above.
        unsafe { std::env::set_var(key, text) };
    }
    next
}

/// `set_var` panics on an empty name or one containing `=` or NUL: such keys are not exported.
fn valid_name(key: &str) -> bool {
    !key.is_empty() && !key.contains(['=', '\0'])
}

/// Formats a float the way Python's `str()` does: `3.0`, `0.5`, `1e-07`, `1e+100`, `inf`, `nan`.
pub(crate) fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Python's repr does.
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let fixed = x.to_string();
        if fixed.contains('.') { fixed } else { format!("{fixed}.0") }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let cases = [
            (0.5, "0.5"),
            (3.0, "3.0"),
            (1e-7, "1e-07"),
            (1e100, "1e+100"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123_456_789_012_345.6, "123456789012345.6"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float(x), want, "{x:?}");
        }
    }

    #[test]
    fn only_top_level_strings_and_numbers() {
        let table: Table =
            "s = 'x'\ni = -3\nf = 3.0\nb = true\nd = 2024-01-01\na = [1]\n[t]\nk = 'v'\n".parse().unwrap();
        let exported = exportable(&table);
        let got: Vec<(&str, &str)> = exported.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("f", "3.0"), ("i", "-3"), ("s", "x")]);
    }
}
