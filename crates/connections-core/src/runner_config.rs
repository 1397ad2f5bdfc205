//! `[runner] connectionDefaultTTL` of Streamlit's `config.toml`: the factory's default `ttl`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use toml::{Table, Value};

use crate::error::{Error, Result};
use crate::secrets::SecretsStore;

/// The dotted key, as errors show it.
const KEY: &str = "runner.connectionDefaultTTL";

/// The default `ttl` of connection objects opened with `store`: `[runner]
/// connectionDefaultTTL` in `~/.streamlit/config.toml` or the project's `.streamlit/config.toml`
/// (the later file wins), in seconds; `None` when neither sets it.
///
/// The files are read again only when they change (size or modification time).
pub(crate) fn default_ttl(store: &SecretsStore) -> Result<Option<Duration>> {
    type Seen = (Vec<Option<(SystemTime, u64)>>, Result<Option<Duration>, Arc<Error>>);
    static CACHE: OnceLock<Mutex<HashMap<Vec<PathBuf>, Seen>>> = OnceLock::new();
    let files = store.streamlit_config_files();
    let stamps: Vec<Option<(SystemTime, u64)>> = files.iter().map(|f| stamp(f)).collect();
    let mut cache = CACHE.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    let seen = match cache.get(&files) {
        Some((seen_stamps, seen)) if *seen_stamps == stamps => seen.clone(),
        _ => {
            let read = read_default_ttl(&files).map_err(Arc::new);
            cache.insert(files, (stamps, read.clone()));
            read
        }
    };
    seen.map_err(Error::Shared)
}

fn stamp(file: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read_default_ttl(files: &[PathBuf]) -> Result<Option<Duration>> {
    let mut ttl = None;
    for file in files {
        let Some(table) = read_toml(file)? else { continue };
        let Some(runner) = table.get("runner") else { continue };
        let Some(runner) = runner.as_table() else {
            return Err(Error::InvalidConfig {
                path: file.clone(),
                key: "runner".into(),
                expected: "expected a table".into(),
            });
        };
        if let Some(value) = runner.get("connectionDefaultTTL") {
            ttl = Some(coerce(value).ok_or_else(|| invalid(file, value))?);
        }
    }
    Ok(ttl)
}

/// Streamlit's `_coerce_connection_default_ttl`: numbers and strings holding one (trimmed),
/// finite and not negative; never a boolean.
fn coerce(value: &Value) -> Option<Duration> {
    let seconds = match value {
        Value::Integer(i) => return u64::try_from(*i).ok().map(Duration::from_secs),
        Value::Float(f) => *f,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok().filter(|_| seconds.is_finite())
}

fn invalid(file: &Path, value: &Value) -> Error {
    Error::InvalidConfig {
        path: file.to_owned(),
        key: KEY.into(),
        expected: format!(
            "use a finite, non-negative number of seconds, or leave the option unset to keep connections cached until they are cleared; received {value}"
        ),
    }
}

/// Reads and parses a TOML file; `Ok(None)` if it does not exist.
fn read_toml(file: &Path) -> Result<Option<Table>> {
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| Error::Read {
            path: file.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path: file.to_owned(), source }),
    };
    text.parse::<Table>().map(Some).map_err(|e| {
        let offset = e.span().map_or(0, |span| span.start).min(text.len());
        let before = text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        Error::Parse { path: file.to_owned(), line, column, message: e.message().trim().to_owned() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion_follows_streamlit() {
        let secs = |v: Value| coerce(&v).map(|d| d.as_secs_f64());
        assert_eq!(secs(Value::Integer(60)), Some(60.0));
        assert_eq!(secs(Value::Float(1.5)), Some(1.5));
        assert_eq!(secs(Value::String(" 30 ".into())), Some(30.0));
        assert_eq!(secs(Value::Integer(0)), Some(0.0));
        for bad in [
            Value::Integer(-5),
            Value::Float(-0.5),
            Value::Float(f64::INFINITY),
            Value::Float(f64::NAN),
            Value::String("inf".into()),
            Value::String("1h".into()),
            Value::String("-1".into()),
            Value::Boolean(true),
            Value::Array(vec![]),
        ] {
            assert_eq!(coerce(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_message_names_file_key_and_value() {
        let err = invalid(Path::new("/p/.streamlit/config.toml"), &Value::Integer(-5));
        assert_eq!(
            err.to_string(),
            "`runner.connectionDefaultTTL` in /p/.streamlit/config.toml: use a finite, non-negative number of seconds, or leave the option unset to keep connections cached until they are cleared; received -5"
        );
    }
}
