//! What a publishable crate's manifest must carry, and the dependency half of the MSRV check.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde_json::Value;
use xshell::{Shell, cmd};

use super::Crate;

/// Host names of placeholder URLs, which must not reach a registry.
const PLACEHOLDER_HOSTS: [&str; 3] = ["example.invalid", "example.com", "example.org"];

/// The problems of one crate's manifest: missing metadata, placeholder URLs, undocumented
/// features, crate docs that do not list the features.
pub(super) fn check_manifest(krate: &Crate) -> Vec<String> {
    let meta = &krate.metadata;
    let mut problems = Vec::new();
    let text = |key: &str| meta[key].as_str().filter(|s| !s.trim().is_empty());
    let list_len = |key: &str| meta[key].as_array().map_or(0, Vec::len);

    for key in ["description", "license", "rust_version", "readme"] {
        if text(key).is_none() {
            problems.push(format!("`{}` is not set", key.replace('_', "-")));
        }
    }
    if let Some(readme) = text("readme")
        && !krate.dir().join(readme).is_file()
    {
        problems.push(format!("the readme {readme} does not exist"));
    }
    if !(1..=5).contains(&list_len("keywords")) {
        problems.push("`keywords` must hold 1 to 5 words".to_owned());
    }
    if list_len("categories") == 0 {
        problems.push("`categories` is empty".to_owned());
    }
    if text("documentation").is_none() && text("homepage").is_none() {
        problems.push("neither `documentation` nor `homepage` is set".to_owned());
    }
    for key in ["repository", "homepage", "documentation"] {
        if let Some(url) = text(key)
            && PLACEHOLDER_HOSTS.iter().any(|host| url.contains(host))
        {
            problems.push(format!("`{key}` is a placeholder ({url}): give the real URL or leave it out"));
        }
    }
    // docs.rs documents libraries: a binary-only crate (a CLI) needs no docs.rs settings
    let libs = krate.roots(&["lib", "proc-macro"]);
    let docs_rs = &meta["metadata"]["docs"]["rs"];
    let documents_all = docs_rs["all-features"].as_bool() == Some(true) || docs_rs["features"].is_array();
    if !libs.is_empty() && !documents_all {
        problems
            .push("[package.metadata.docs.rs] needs `all-features = true` or the `features` to document".to_owned());
    }

    let manifest = match std::fs::read_to_string(&krate.manifest_path) {
        Ok(manifest) => manifest,
        Err(err) => {
            problems.push(format!("cannot read {}: {err}", krate.manifest_path.display()));
            String::new()
        }
    };
    let features = features(&manifest);
    for (name, documented) in &features {
        if !documented {
            problems.push(format!("feature `{name}` has no `## ` comment above it"));
        }
    }
    // a crate without features has no list to show
    for lib in libs.iter().filter(|_| !features.is_empty()) {
        let lib = krate.dir().join(lib);
        let lists_features = std::fs::read_to_string(&lib).is_ok_and(|s| s.contains("document_features!()"));
        if !lists_features {
            problems.push(format!(
                "{} does not list the features (`#![doc = document_features::document_features!()]`)",
                lib.display()
            ));
        }
    }
    problems
}

/// The features of a manifest's `[features]` table other than `default`, each with whether a
/// `## ` comment stands right above it (what `document-features` puts in the docs).
fn features(manifest: &str) -> Vec<(String, bool)> {
    let mut features = Vec::new();
    let mut in_features = false;
    let mut documented = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_features = line == "[features]";
            documented = false;
        } else if line.starts_with("## ") || line == "##" {
            documented = true;
        } else if in_features
            && let Some((name, _)) = line.split_once('=')
            && !line.starts_with('#')
            && !line.starts_with('"')
            && !name.trim().is_empty()
        {
            let name = name.trim().trim_matches('"');
            if name != "default" {
                features.push((name.to_owned(), documented));
            }
            documented = false;
        }
    }
    features
}

/// The dependencies, reached through normal and build dependencies (every feature on), whose
/// own `rust-version` is newer than the crate's: the crate could not build on its MSRV.
pub(super) fn check_msrv(sh: &Shell, crates: &[Crate]) -> anyhow::Result<Vec<String>> {
    let json = cmd!(sh, "cargo metadata --format-version 1 --all-features --offline").quiet().read()?;
    let metadata: Value = serde_json::from_str(&json).context("cannot parse `cargo metadata`")?;
    let packages: BTreeMap<&str, &Value> =
        metadata["packages"].as_array().into_iter().flatten().filter_map(|p| Some((p["id"].as_str()?, p))).collect();
    let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();

    let mut problems = Vec::new();
    for krate in crates {
        let Some(msrv) = krate.metadata["rust_version"].as_str() else { continue };
        let Some(start) = krate.metadata["id"].as_str() else { continue };
        let mut seen = BTreeSet::from([start]);
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            let deps = nodes.get(id).and_then(|n| n["deps"].as_array()).into_iter().flatten();
            for dep in deps {
                let linked =
                    dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].as_str() != Some("dev"));
                if let Some(pkg) = dep["pkg"].as_str()
                    && linked
                    && seen.insert(pkg)
                {
                    stack.push(pkg);
                }
            }
        }
        for id in seen {
            let Some(package) = packages.get(id) else { continue };
            if let Some(needed) = package["rust_version"].as_str()
                && newer(needed, msrv)
            {
                let name = package["name"].as_str().unwrap_or(id);
                let version = package["version"].as_str().unwrap_or("?");
                problems.push(format!(
                    "{}: rust-version {msrv}, but its dependency {name} {version} needs Rust {needed}",
                    krate.name
                ));
            }
        }
    }
    Ok(problems)
}

/// Whether Rust version `a` is newer than `b` (`1.88` < `1.88.1` < `1.89`).
fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| {
        v.split('.').map(|p| p.parse::<u64>().unwrap_or(0)).chain(std::iter::repeat(0)).take(3).collect::<Vec<_>>()
    };
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{check_manifest, features, newer};
    use crate::package::Crate;

    /// A crate in a temporary folder with this manifest text, `lib.rs` and metadata.
    fn krate(manifest: &str, lib: &str, metadata: serde_json::Value) -> (tempfile::TempDir, Crate) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), lib).unwrap();
        std::fs::write(dir.path().join("README.md"), "# x\n").unwrap();
        let mut metadata = metadata;
        metadata["targets"] =
            serde_json::json!([{ "kind": ["lib"], "src_path": dir.path().join("src/lib.rs").display().to_string() }]);
        let krate = Crate {
            name: "x".into(),
            version: "0.1.0".into(),
            manifest_path: dir.path().join("Cargo.toml"),
            needs: BTreeSet::new(),
            metadata,
        };
        (dir, krate)
    }

    #[test]
    fn a_ready_manifest_passes() {
        let metadata = serde_json::json!({
            "description": "x", "license": "MIT OR Apache-2.0", "rust_version": "1.88", "readme": "README.md",
            "keywords": ["a"], "categories": ["database"], "documentation": "https://docs.rs/x",
            "metadata": { "docs": { "rs": { "all-features": true } } },
        });
        let (_dir, krate) = krate(
            "[features]\n## A.\na = []\n",
            "//! X\n#![doc = document_features::document_features!()]\n",
            metadata,
        );
        assert_eq!(check_manifest(&krate), Vec::<String>::new());
    }

    #[test]
    fn a_crate_without_features_needs_no_list() {
        let metadata = serde_json::json!({
            "description": "x", "license": "MIT OR Apache-2.0", "rust_version": "1.88", "readme": "README.md",
            "keywords": ["a"], "categories": ["database"], "documentation": "https://docs.rs/x",
            "metadata": { "docs": { "rs": { "all-features": true } } },
        });
        let (_dir, krate) = krate("[package]\nname = \"x\"\n\n[dependencies]\n", "//! X\n", metadata);
        assert_eq!(check_manifest(&krate), Vec::<String>::new());
    }

    #[test]
    fn missing_metadata_is_listed() {
        let metadata = serde_json::json!({
            "description": "x", "license": "MIT", "readme": "README.md",
            "repository": "https://example.invalid/x", "keywords": ["a", "b", "c", "d", "e", "f"],
        });
        let (_dir, krate) = krate("[features]\na = []\n", "//! X\n", metadata);
        let problems = check_manifest(&krate);
        let expected = [
            "`rust-version` is not set",
            "`keywords` must hold 1 to 5 words",
            "`categories` is empty",
            "neither `documentation` nor `homepage` is set",
            "`repository` is a placeholder (https://example.invalid/x): give the real URL or leave it out",
            "[package.metadata.docs.rs] needs `all-features = true` or the `features` to document",
            "feature `a` has no `## ` comment above it",
        ];
        assert_eq!(problems[..expected.len()], expected);
        assert_eq!(problems.len(), expected.len() + 1, "{problems:?}");
        assert!(
            problems[expected.len()]
                .ends_with("does not list the features (`#![doc = document_features::document_features!()]`)")
        );
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(newer("1.89", "1.88"));
        assert!(newer("1.100", "1.88"));
        assert!(newer("1.88.1", "1.88"));
        assert!(!newer("1.88", "1.88.0"));
        assert!(!newer("1.70", "1.88"));
    }

    #[test]
    fn features_and_their_comments() {
        let manifest = "[package]\nname = \"x\"\n\n[features]\ndefault = [\"a\"]\n## The a feature.\na = []\nb = [\n  \"a\",\n]\n## C.\n##\n## More on c.\nc = []\n\n[dependencies]\nserde = \"1\"\n";
        let features = features(manifest);
        assert_eq!(features, [("a".to_owned(), true), ("b".to_owned(), false), ("c".to_owned(), true)]);
    }
}
