//! Which other crates' items show in each library's public API, from rustdoc's JSON output,
//! against the list the manifest declares on purpose
//! (`[package.metadata.release] public-dependencies`): a dependency that leaks into a signature
//! unannounced would make its next major version a breaking release of ours.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

use super::Crate;

/// Crates whose items are everyone's: the standard library.
const STANDARD: [&str; 4] = ["std", "core", "alloc", "proc_macro"];

/// Builds each library's rustdoc JSON (an unstable rustdoc output, enabled on the stable
/// toolchain with `RUSTC_BOOTSTRAP=1`, in a target directory of its own so that the
/// workspace's builds are not disturbed) and fails if a crate's public items name a crate
/// that is neither declared in its manifest nor a workspace crate.
pub(super) fn check(sh: &Shell, crates: &[Crate], target: &Path) -> anyhow::Result<()> {
    let dir = target.join("public-api");
    let workspace: BTreeSet<String> = crates.iter().map(|c| c.name.replace('-', "_")).collect();
    let mut problems = Vec::new();
    for krate in crates {
        let Some(lib) = lib_name(krate) else { continue };
        let name = &krate.name;
        cmd!(sh, "cargo rustdoc --quiet -p {name} --lib --all-features -- -Z unstable-options --output-format json")
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", &dir)
            .run()
            .with_context(|| format!("rustdoc JSON of {name}"))?;
        let json = dir.join("doc").join(format!("{lib}.json"));
        let text = std::fs::read_to_string(&json).with_context(|| format!("cannot read {}", json.display()))?;
        let doc: Value = serde_json::from_str(&text).with_context(|| format!("cannot parse {}", json.display()))?;
        let declared = declared(krate);
        let used = external_uses(&doc);
        println!("{name}: public dependencies {}", used.keys().cloned().collect::<Vec<_>>().join(", "));
        for (dependency, items) in used {
            if workspace.contains(&dependency) || declared.iter().any(|d| matches(d, &dependency)) {
                continue;
            }
            let items: Vec<&str> = items.iter().map(String::as_str).take(5).collect();
            problems.push(format!(
                "{name}: `{dependency}` shows in the public API ({}) but is not in \
                 [package.metadata.release] public-dependencies: hide it, or declare and document it",
                items.join("; ")
            ));
        }
    }
    if !problems.is_empty() {
        bail!("undeclared public dependencies:\n  - {}", problems.join("\n  - "));
    }
    Ok(())
}

/// The library target's crate name (`connections_core`), if the crate has a library.
fn lib_name(krate: &Crate) -> Option<String> {
    let targets = krate.metadata["targets"].as_array()?;
    let lib = targets.iter().find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib")))?;
    Some(lib["name"].as_str()?.replace('-', "_"))
}

/// The crate names the manifest declares public on purpose (`arrow_*` matches by prefix).
fn declared(krate: &Crate) -> Vec<String> {
    let list = krate.metadata["metadata"]["release"]["public-dependencies"].as_array();
    list.into_iter().flatten().filter_map(Value::as_str).map(|s| s.replace('-', "_")).collect()
}

/// Whether declared name `pattern` (`toml`, `arrow_*`) covers crate `name`.
fn matches(pattern: &str, name: &str) -> bool {
    pattern.strip_suffix('*').map_or(pattern == name, |prefix| name.starts_with(prefix))
}

/// The external crates named by the public items of a rustdoc JSON document, each with the
/// items that name them (`SqlPool::as_sqlite -> sqlx_sqlite::SqlitePool`). Compiler-made impls
/// (auto traits, blanket impls) are left out; the standard library is not counted.
fn external_uses(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let crates: BTreeMap<u64, &str> = doc["external_crates"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, c)| Some((id.parse().ok()?, c["name"].as_str()?)))
        .collect();
    let paths = &doc["paths"];
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in doc["index"].as_object().into_iter().flatten().map(|(_, item)| item) {
        if item["crate_id"].as_u64() != Some(0) {
            continue;
        }
        let inner = &item["inner"];
        if let Some(imp) = inner.get("impl")
            && (imp["is_synthetic"].as_bool() == Some(true) || !imp["blanket_impl"].is_null())
        {
            continue;
        }
        let owner = item["name"].as_str().unwrap_or("impl");
        let mut found = Vec::new();
        collect_paths(inner, &mut found);
        for id in found {
            let Some(path) = paths.get(id.to_string()) else { continue };
            let Some(krate) = path["crate_id"].as_u64().filter(|&c| c != 0).and_then(|c| crates.get(&c)) else {
                continue;
            };
            if STANDARD.contains(krate) {
                continue;
            }
            let named = path["path"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>();
            uses.entry((*krate).to_owned()).or_default().insert(format!("{owner} -> {}", named.join("::")));
        }
    }
    uses
}

/// The ids of every path (`{ "path": ..., "id": ..., "args": ... }`) inside `value`.
fn collect_paths(value: &Value, found: &mut Vec<u64>) {
    match value {
        Value::Object(map) => {
            if map.get("path").is_some_and(Value::is_string)
                && map.contains_key("args")
                && let Some(id) = map.get("id").and_then(Value::as_u64)
            {
                found.push(id);
            }
            map.values().for_each(|v| collect_paths(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_paths(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{external_uses, matches};

    #[test]
    fn patterns() {
        assert!(matches("arrow_*", "arrow_array"));
        assert!(matches("toml", "toml"));
        assert!(!matches("toml", "toml_datetime"));
    }

    #[test]
    fn paths_of_public_items_are_collected() {
        let doc = json!({
            "external_crates": { "1": { "name": "sqlx_sqlite" }, "2": { "name": "core" }, "3": { "name": "moka" } },
            "paths": {
                "10": { "crate_id": 1, "path": ["sqlx_sqlite", "SqlitePool"] },
                "11": { "crate_id": 2, "path": ["core", "option", "Option"] },
                "12": { "crate_id": 3, "path": ["moka", "future", "Cache"] },
            },
            "index": {
                "1": { "crate_id": 0, "name": "as_sqlite", "inner": { "function": { "sig": { "output":
                    { "resolved_path": { "path": "Option", "id": 11, "args": { "angle_bracketed": { "args": [
                        { "type": { "borrowed_ref": { "type": { "resolved_path": { "path": "SqlitePool", "id": 10, "args": null } } } } }
                    ] } } } } } } } },
                "2": { "crate_id": 0, "name": null, "inner": { "impl": { "is_synthetic": false, "blanket_impl":
                    { "generic": "T" }, "trait": { "path": "From", "id": 12, "args": null } } } },
            },
        });
        let uses = external_uses(&doc);
        assert_eq!(uses.keys().collect::<Vec<_>>(), ["sqlx_sqlite"]);
        assert!(uses["sqlx_sqlite"].contains("as_sqlite -> sqlx_sqlite::SqlitePool"));
    }
}
