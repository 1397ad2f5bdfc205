//! `connections secrets`: the files searched and found, and the key tree with values redacted.

use anyhow::Result;
use connections::Secrets;
use connections::toml::{Table, Value};

use crate::cli::SecretsArgs;

/// Prints the report, or with `--show` one value on purpose.
pub(crate) fn run(args: &SecretsArgs) -> Result<()> {
    let store = connections::secrets_store();
    let searched = store.paths()?;
    let secrets = store.load()?;
    if let Some(path) = &args.show {
        let value = secrets.require(path)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&serde_json::to_value(value)?)?);
        } else if let Value::String(text) = value {
            println!("{text}");
        } else {
            println!("{value}");
        }
        return Ok(());
    }
    let found = secrets.files();
    if args.json {
        let report = serde_json::json!({
            "searched": searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "found": found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "keys": redacted_json(secrets.as_table()),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("searched (later files win):");
    for path in &searched {
        let mark = if found.contains(path) { "found" } else { "not found" };
        println!("  {} ({mark})", path.display());
    }
    for path in found.iter().filter(|p| !searched.contains(p)) {
        println!("  {} (found)", path.display());
    }
    println!("keys (values redacted; --show KEY.PATH prints one):");
    let mut lines = Vec::new();
    leaves(&secrets, secrets.as_table(), "", &mut lines);
    let width = lines.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    for (key, kind, origin) in lines {
        println!("  {key:<width$}  {kind:<10}  {origin}");
    }
    Ok(())
}

/// `key` as it is written in a key path: bare when it can be, else quoted.
fn key_segment(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_owned() } else { format!("{key:?}") }
}

/// Every leaf of the tree: its key path, `<type>`, and the file it came from.
fn leaves(secrets: &Secrets, table: &Table, prefix: &str, out: &mut Vec<(String, String, String)>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key_segment(key) } else { format!("{prefix}.{}", key_segment(key)) };
        match value {
            Value::Table(inner) if !inner.is_empty() => leaves(secrets, inner, &path, out),
            _ => {
                let origin = secrets.origin(&path).ok().flatten().map(|p| p.display().to_string()).unwrap_or_default();
                out.push((path, format!("<{}>", kind(value)), origin));
            }
        }
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("array of {}", items.len()),
        other => other.type_str().to_owned(),
    }
}

/// The tree with every leaf replaced by `"<type>"`.
fn redacted_json(table: &Table) -> serde_json::Value {
    let map = table
        .iter()
        .map(|(key, value)| {
            let shown = match value {
                Value::Table(inner) => redacted_json(inner),
                other => serde_json::Value::String(format!("<{}>", kind(other))),
            };
            (key.clone(), shown)
        })
        .collect();
    serde_json::Value::Object(map)
}
