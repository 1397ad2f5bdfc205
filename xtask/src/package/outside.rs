//! A connector crate outside the workspace, built against the packaged `connections-core`: the
//! experience of a third-party author. Its sources live in `xtask/outside-connector/`.

use std::path::Path;

use anyhow::{Context, ensure};
use serde_json::Value;
use xshell::{Shell, cmd};

use super::Crate;

/// The crate connector authors depend on.
pub(super) const CORE: &str = "connections-core";

/// The generated project's files: (path in the project, contents).
const SOURCES: [(&str, &str); 2] = [
    ("src/lib.rs", include_str!("../../outside-connector/src/lib.rs")),
    ("tests/conformance.rs", include_str!("../../outside-connector/tests/conformance.rs")),
];

/// The generated project's manifest, with `@CORE_REQ@` and `@CORE_PATH@` to fill in.
const MANIFEST: &str = include_str!("../../outside-connector/Cargo.toml.in");

/// Writes the connector into a temporary directory, with `connections-core` patched to the
/// unpacked `core_crate` tarball (standing in for the registry), seeds its `Cargo.lock` from the
/// workspace's so that it builds offline, checks that cargo took the core from the tarball, and
/// runs `cargo test`: the conformance suite on the connector.
pub(super) fn build_and_test(sh: &Shell, core: &Crate, core_crate: &Path, target: &Path) -> anyhow::Result<()> {
    let temp =
        tempfile::Builder::new().prefix("outside-connector-").tempdir().context("cannot make a temporary directory")?;
    let project = temp.path().join("kv-connector");
    // the unpacked core at a fixed place, so that a second run finds it compiled already
    let registry = target.join("outside-connector");
    if registry.exists() {
        std::fs::remove_dir_all(&registry).with_context(|| format!("cannot empty {}", registry.display()))?;
    }
    std::fs::create_dir_all(&registry)?;
    cmd!(sh, "tar -xzf {core_crate} -C {registry}").quiet().run().context("cannot unpack the packaged core")?;
    let unpacked = registry.join(core.stem());
    ensure!(unpacked.join("Cargo.toml").is_file(), "{} holds no {}/Cargo.toml", core_crate.display(), core.stem());

    // the requirement an author writes, `0.1` for 0.1.x: what docs/writing-a-connector.md says
    let requirement = core.version.split('.').take(2).collect::<Vec<_>>().join(".");
    let manifest = MANIFEST.replace("@CORE_REQ@", &requirement).replace("@CORE_PATH@", &toml_path(&unpacked));
    std::fs::create_dir_all(project.join("src"))?;
    std::fs::create_dir_all(project.join("tests"))?;
    std::fs::write(project.join("Cargo.toml"), manifest)?;
    for (path, text) in SOURCES {
        std::fs::write(project.join(path), text)?;
    }
    // the workspace's lock holds every version the connector needs: cargo keeps those and drops
    // the rest, so `--offline` finds them all in the local cache
    let workspace_lock = sh.current_dir().join("Cargo.lock");
    std::fs::copy(&workspace_lock, project.join("Cargo.lock")).context("cannot copy Cargo.lock")?;

    println!("outside connector: {} (connections-core from {})", project.display(), core_crate.display());
    let _dir = sh.push_dir(&project);
    // the workspace's target directory, where `cargo package` just compiled the core's
    // dependencies with the same profile (DEPENDENCY_PROFILE, also in the generated manifest)
    let _target = sh.push_env("CARGO_TARGET_DIR", target);
    // resolving keeps the locked versions and drops the rest: offline if the cache has them all
    let offline = cmd!(sh, "cargo metadata --format-version 1 --offline").quiet().read();
    let (json, network) = if let Ok(json) = offline {
        (json, "--offline")
    } else {
        println!("note: the crate cache lacks something the connector needs; resolving online");
        (cmd!(sh, "cargo metadata --format-version 1").quiet().read()?, "--locked")
    };
    let metadata: Value = serde_json::from_str(&json).context("cannot parse the connector's `cargo metadata`")?;
    let used = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"].as_str() == Some(CORE))
        .and_then(|p| p["manifest_path"].as_str())
        .context("the connector does not depend on connections-core")?;
    let used = Path::new(used).canonicalize()?;
    ensure!(
        used.starts_with(unpacked.canonicalize()?),
        "the connector took connections-core from {}, not from the packaged tarball",
        used.display()
    );

    cmd!(sh, "cargo test {network}").run().context("the outside connector failed its tests")?;
    println!("outside connector: built against the packaged {} and passed the conformance suite", core.stem());
    Ok(())
}

/// A path as a TOML basic string's contents (backslashes of Windows paths escaped).
fn toml_path(path: &Path) -> String {
    path.display().to_string().replace('\\', "\\\\").replace('"', "\\\"")
}
