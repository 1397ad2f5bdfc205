//! Export of top-level string and number secrets to the process environment, as Streamlit does
//! for every app: a one-time step an application takes in `main`, before it starts threads.
//!
//! `std::env::set_var` is unsafe in a program where another thread may read or write the
//! environment, so the export is an `unsafe fn` ([`Secrets::export_to_env`]) whose caller
//! promises that no such thread exists. Nothing else writes the environment: not a load, not a
//! reload, not the watcher, and no safe API.

#![allow(unsafe_code)] // the one place that writes the process environment

use toml::{Table, Value};

use super::snapshot::Secrets;

/// The variables Streamlit would export for these secrets, in key order: top-level strings,
/// integers and floats (not booleans, dates, arrays or tables), formatted as Python's `str()`
/// does.
pub(crate) fn exportable(table: &Table) -> Vec<(String, String)> {
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

impl Secrets {
    /// Copies the top-level string, integer and float secrets into the process environment, as
    /// Streamlit does (`os.environ[key] = str(value)`), overwriting existing variables; returns
    /// the names of the variables set.
    ///
    /// Floats are written as Python's `str()` writes them (`3.0`, `0.5`, `1e-07`, `inf`);
    /// booleans, dates and times, arrays, tables and nested keys are not exported, nor are keys
    /// that cannot name a variable (empty, or containing `=` or NUL).
    ///
    /// This is a one-time step for the start of `main`: the environment is never written by a
    /// load, a reload or the file watcher, so a later change to the secrets does not reach the
    /// exported variables (they keep the values exported here).
    ///
    /// # Safety
    ///
    /// Writing the environment is only sound while no other thread reads or writes it. Call this
    /// before any thread exists that could: before building an async runtime, before spawning
    /// threads, and with a snapshot loaded by a store that does not watch (a watching store,
    /// such as the process-wide one behind `secrets()`, starts a watcher thread at its first
    /// load). See [`std::env::set_var`].
    ///
    /// ```
    /// # fn main() -> Result<(), connections_core::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let file = dir.path().join("secrets.toml");
    /// # std::fs::write(&file, "API_TOKEN = \"t0k3n\"\nRATIO = 1e-7\n[db]\nurl = \"sqlite://\"\n").unwrap();
    /// // first thing in `main`, before any runtime or thread exists
    /// let secrets = connections_core::SecretsStore::builder().files([&file]).build().load()?;
    /// // SAFETY: no other thread exists yet
    /// let exported = unsafe { secrets.export_to_env() };
    /// assert_eq!(exported, ["API_TOKEN", "RATIO"]);
    /// assert_eq!(std::env::var("RATIO").unwrap(), "1e-07");
    /// // ... then build the runtime and serve
    /// # Ok(()) }
    /// ```
    ///
    /// A store's builder has no switch for this, so no load on a runtime worker or the watcher
    /// thread can write the environment:
    ///
    /// ```compile_fail
    /// let store = connections_core::SecretsStore::builder().export_env(true).build();
    /// ```
    pub unsafe fn export_to_env(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (key, text) in exportable(self.as_table()) {
            // SAFETY: the caller promises that no other thread reads or writes the environment.
            unsafe { std::env::set_var(&key, text) };
            names.push(key);
        }
        names
    }
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
        assert_eq!(got, [("s", "x"), ("i", "-3"), ("f", "3.0")]);
    }
}
