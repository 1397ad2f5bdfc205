//! `cargo xtask package`: every publishable crate packaged as the registry would get it, checked,
//! and a connector crate outside the workspace built and tested against the packages.
//!
//! The crates come from `cargo metadata`: every workspace member whose `publish` is not `false`,
//! in the order their dependencies on each other need. Nothing here names a crate, so a new
//! library crate is covered as soon as its manifest carries the metadata [`manifest::check_manifest`]
//! asks for.

mod manifest;
mod outside;
mod public_api;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::flags;

/// The largest `.crate` file accepted. The biggest today is about 120 KiB; anything near this
/// means test data or generated files slipped into a package.
const MAX_CRATE_BYTES: u64 = 512 * 1024;

/// File names that have no place in a published library package (test data, databases, build
/// output). Matched against every path component of every packaged file.
const FORBIDDEN_NAMES: [&str; 4] = ["tests", "testdata", "fixtures", "target"];

/// File extensions of data that must not ride along in a package.
const FORBIDDEN_EXTENSIONS: [&str; 7] = ["db", "sqlite", "sqlite3", "parquet", "arrow", "csv", "crate"];

/// The profile setting `cargo package` verifies with and the outside connector is built with,
/// the same as the workspace's `[profile.dev.package."*"]`.
pub(crate) const DEPENDENCY_PROFILE: &str = "profile.dev.package.\"*\".debug=false";

/// A workspace member that is published.
#[derive(Debug, Clone)]
pub(crate) struct Crate {
    /// The package name.
    pub(crate) name: String,
    /// Its version.
    pub(crate) version: String,
    /// The path of its `Cargo.toml`.
    pub(crate) manifest_path: PathBuf,
    /// The publishable workspace crates it depends on (normal and build dependencies).
    pub(crate) needs: BTreeSet<String>,
    /// The package metadata, as `cargo metadata` reports it.
    pub(crate) metadata: Value,
}

impl Crate {
    /// `name-version`, the stem of the `.crate` file.
    pub(crate) fn stem(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// The folder holding the manifest.
    pub(crate) fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }

    /// The source roots of its library and binaries, relative to [`dir`](Self::dir) (`src/lib.rs`,
    /// `src/main.rs`, ...).
    pub(crate) fn roots(&self, kinds: &[&str]) -> Vec<PathBuf> {
        let targets = self.metadata["targets"].as_array().into_iter().flatten();
        targets
            .filter(|t| {
                t["kind"].as_array().into_iter().flatten().any(|k| k.as_str().is_some_and(|k| kinds.contains(&k)))
            })
            .filter_map(|t| Path::new(t["src_path"].as_str()?).strip_prefix(self.dir()).ok().map(Path::to_path_buf))
            .collect()
    }
}

impl flags::Package {
    /// Checks the manifests, packages every publishable crate (verified against each other's
    /// fresh tarballs), checks each package's contents, then builds the outside connector.
    pub(crate) fn run(&self, sh: &Shell) -> anyhow::Result<()> {
        let crates = publishable_crates(sh)?;
        let order: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        println!("publishable crates, in dependency order: {}", order.join(", "));

        let mut problems = Vec::new();
        for krate in &crates {
            problems.extend(manifest::check_manifest(krate).into_iter().map(|p| format!("{}: {p}", krate.name)));
        }
        problems.extend(manifest::check_msrv(sh, &crates)?);
        if !problems.is_empty() {
            bail!("the manifests are not ready to publish:\n  - {}", problems.join("\n  - "));
        }

        package_all(sh, &crates)?;
        let target = target_dir(sh)?;
        let mut table = String::from("package sizes (.crate, compressed):\n");
        for krate in &crates {
            let file = target.join("package").join(format!("{}.crate", krate.stem()));
            let size = check_package(sh, krate, &file)?;
            let _ = writeln!(table, "  {:<28} {:>8.1} KiB", format!("{}.crate", krate.stem()), kib(size));
        }
        print!("{table}");

        if self.public_api {
            public_api::check(sh, &crates, &target.join("api-review"))?;
        }

        if self.no_outside {
            println!("--no-outside: the outside connector is not built");
            return Ok(());
        }
        let core = crates
            .iter()
            .find(|c| c.name == outside::CORE)
            .with_context(|| format!("`{}` is not among the publishable crates", outside::CORE))?;
        outside::build_and_test(sh, core, &target.join("package").join(format!("{}.crate", core.stem())), &target)
    }
}

/// The publishable workspace members, each after the publishable members it depends on.
fn publishable_crates(sh: &Shell) -> anyhow::Result<Vec<Crate>> {
    let json = cmd!(sh, "cargo metadata --format-version 1 --no-deps --offline").quiet().read()?;
    let metadata: Value = serde_json::from_str(&json).context("cannot parse `cargo metadata`")?;
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("`cargo metadata` lists no workspace members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = metadata["packages"].as_array().context("`cargo metadata` lists no packages")?;
    let workspace: Vec<&Value> =
        packages.iter().filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id))).collect();
    // `publish`: null is "any registry", [] is `publish = false`
    let is_publishable = |p: &Value| p["publish"].as_array().is_none_or(|registries| !registries.is_empty());
    let publishable: BTreeSet<&str> =
        workspace.iter().filter(|p| is_publishable(p)).filter_map(|p| p["name"].as_str()).collect();
    let unpublished: BTreeSet<&str> =
        workspace.iter().filter(|p| !is_publishable(p)).filter_map(|p| p["name"].as_str()).collect();

    let mut crates = BTreeMap::new();
    for package in workspace.iter().filter(|p| is_publishable(p)) {
        let name = package["name"].as_str().context("a package without a name")?.to_owned();
        let mut needs = BTreeSet::new();
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let dev = dep["kind"].as_str() == Some("dev");
            if !dev && unpublished.contains(dep_name) {
                bail!("{name} is published but depends on `{dep_name}`, which is `publish = false`");
            }
            if !dev && publishable.contains(dep_name) && dep_name != name {
                needs.insert(dep_name.to_owned());
            }
        }
        crates.insert(
            name.clone(),
            Crate {
                name,
                version: package["version"].as_str().unwrap_or_default().to_owned(),
                manifest_path: PathBuf::from(package["manifest_path"].as_str().unwrap_or_default()),
                needs,
                metadata: (*package).clone(),
            },
        );
    }
    dependency_order(crates)
}

/// Orders the crates so that each comes after everything in its `needs` (ties by name).
fn dependency_order(mut left: BTreeMap<String, Crate>) -> anyhow::Result<Vec<Crate>> {
    let mut ordered: Vec<Crate> = Vec::new();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .values()
            .filter(|c| c.needs.iter().all(|n| ordered.iter().any(|o| &o.name == n)))
            .map(|c| c.name.clone())
            .collect();
        if ready.is_empty() {
            let names: Vec<&str> = left.keys().map(String::as_str).collect();
            bail!("the publishable crates depend on each other in a cycle: {}", names.join(", "));
        }
        for name in ready {
            ordered.extend(left.remove(&name));
        }
    }
    Ok(ordered)
}

/// `cargo package` of every crate at once: cargo packages them in dependency order and verifies
/// each one by building its unpacked tarball with every feature on, its workspace dependencies
/// taken from the tarballs just made (a local registry overlaid on crates.io), not from the
/// workspace paths.
fn package_all(sh: &Shell, crates: &[Crate]) -> anyhow::Result<()> {
    // dependencies without debug info, as the workspace builds them: the verification builds
    // and the outside connector then share one set of compiled dependencies
    let mut args =
        vec!["package".to_owned(), "--all-features".to_owned(), "--config".to_owned(), DEPENDENCY_PROFILE.to_owned()];
    if allow_dirty(sh) {
        args.push("--allow-dirty".to_owned());
    }
    for krate in crates {
        args.push("-p".to_owned());
        args.push(krate.name.clone());
    }
    forget_earlier_packages(crates)?;
    forget_earlier_builds(&target_dir(sh)?, crates)?;
    // offline first: the workspace's lock file names every version and earlier steps (clippy)
    // have downloaded them; online only if something is missing
    println!("$ cargo {} --offline", args.join(" "));
    let offline: Vec<&str> = args.iter().map(String::as_str).chain(["--offline"]).collect();
    if cmd!(sh, "cargo {offline...}").quiet().run().is_ok() {
        return Ok(());
    }
    println!("offline packaging failed; again with the registry reachable:\n$ cargo {}", args.join(" "));
    cmd!(sh, "cargo {args...}").quiet().run().context("cargo package failed")?;
    Ok(())
}

/// Removes what cargo kept of an earlier run's packages. The verification builds take the
/// workspace crates from a local registry overlay; cargo unpacks each `.crate` into
/// `$CARGO_HOME/registry/src/<registry>/<name>-<version>` once and reuses that directory while it
/// exists, so a crate packaged again at the same version would be verified against its old
/// sources. crates.io's own directories are left alone.
fn forget_earlier_packages(crates: &[Crate]) -> anyhow::Result<()> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let Some(registry) = cargo_home.map(|home| home.join("registry")) else { return Ok(()) };
    for kind in ["src", "cache"] {
        let Ok(registries) = std::fs::read_dir(registry.join(kind)) else { continue };
        for entry in registries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("index.crates.io-") {
                continue;
            }
            for krate in crates {
                let unpacked = entry.path().join(krate.stem());
                if unpacked.is_dir() {
                    std::fs::remove_dir_all(&unpacked)
                        .with_context(|| format!("cannot remove {}", unpacked.display()))?;
                }
                let tarball = entry.path().join(format!("{}.crate", krate.stem()));
                if tarball.is_file() {
                    std::fs::remove_file(&tarball).with_context(|| format!("cannot remove {}", tarball.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// Removes the build fingerprints of the crates about to be packaged. cargo unpacks a package
/// with every file's modification time set to one fixed date in the past, so a crate packaged
/// again at the same version looks unchanged to the fingerprint of the library compiled from
/// its earlier package, and would be verified against that library, built from its old sources.
/// The fingerprints of a registry build and of the workspace's own build of a crate cannot be
/// told apart, so all of these crates' fingerprints go: they are rebuilt once (the verification
/// builds them anyway); the dependencies' builds stay.
fn forget_earlier_builds(target: &Path, crates: &[Crate]) -> anyhow::Result<()> {
    let Ok(profiles) = std::fs::read_dir(target) else { return Ok(()) };
    for profile in profiles.flatten() {
        let Ok(fingerprints) = std::fs::read_dir(profile.path().join(".fingerprint")) else { continue };
        for entry in fingerprints.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = crates.iter().any(|krate| {
                name.strip_prefix(krate.name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|hash| !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()))
            });
            if ours {
                std::fs::remove_dir_all(entry.path())
                    .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Whether to package uncommitted changes: under CI (a fresh clone) the tree is clean; on a
/// developer's machine the work in progress is what should be checked.
fn allow_dirty(sh: &Shell) -> bool {
    !sh.var("CI").is_ok_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// Checks one `.crate` file: its size, that it holds the README, the license files, the
/// manifest and the sources, and no test data. Returns its size in bytes.
fn check_package(sh: &Shell, krate: &Crate, file: &Path) -> anyhow::Result<u64> {
    let size = std::fs::metadata(file).with_context(|| format!("{} was not made", file.display()))?.len();
    let listing =
        cmd!(sh, "tar -tzf {file}").quiet().read().with_context(|| format!("cannot list {}", file.display()))?;
    let prefix = format!("{}/", krate.stem());
    let files: Vec<&str> = listing.lines().filter_map(|line| line.strip_prefix(&prefix)).collect();

    let problems = package_problems(krate, &files, size);
    ensure!(problems.is_empty(), "{}: {}", file.display(), problems.join("; "));
    Ok(size)
}

/// What is wrong with a package of `krate` holding `files` (paths inside the package) in `size`
/// bytes.
fn package_problems(krate: &Crate, files: &[&str], size: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let readme = krate.metadata["readme"].as_str().unwrap_or("README.md");
    let readme = Path::new(readme).file_name().and_then(|n| n.to_str()).unwrap_or(readme);
    let roots: Vec<String> =
        krate.roots(&["lib", "proc-macro", "bin"]).iter().map(|p| p.display().to_string()).collect();
    let needed =
        [readme, "Cargo.toml", "LICENSE-MIT", "LICENSE-APACHE"].into_iter().chain(roots.iter().map(String::as_str));
    for needed in needed {
        if !files.contains(&needed) {
            problems.push(format!("{needed} is missing"));
        }
    }
    for path in files {
        let parts: Vec<&str> = path.split('/').collect();
        let data = Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| FORBIDDEN_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if data || parts.iter().any(|p| FORBIDDEN_NAMES.contains(p)) {
            problems.push(format!("{path} is test data or build output (narrow `include` in the manifest)"));
        }
    }
    if size > MAX_CRATE_BYTES {
        problems.push(format!("{:.1} KiB, over the {:.0} KiB budget", kib(size), kib(MAX_CRATE_BYTES)));
    }
    problems
}

/// The workspace's target directory.
pub(crate) fn target_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    let json = cmd!(sh, "cargo metadata --format-version 1 --no-deps --offline").quiet().read()?;
    let metadata: Value = serde_json::from_str(&json).context("cannot parse `cargo metadata`")?;
    let dir = metadata["target_directory"].as_str().context("`cargo metadata` names no target directory")?;
    Ok(PathBuf::from(dir))
}

/// Bytes as KiB, for display.
#[expect(clippy::cast_precision_loss, reason = "file sizes far below 2^52 bytes")]
fn kib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use super::{Crate, MAX_CRATE_BYTES, dependency_order, package_problems};

    fn krate(name: &str, needs: &[&str]) -> Crate {
        Crate {
            name: name.to_owned(),
            version: "0.1.0".to_owned(),
            manifest_path: PathBuf::from(format!("crates/{name}/Cargo.toml")),
            needs: needs.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<_>>(),
            metadata: serde_json::Value::Null,
        }
    }

    fn order(crates: &[Crate]) -> anyhow::Result<Vec<String>> {
        let map: BTreeMap<String, Crate> = crates.iter().map(|c| (c.name.clone(), c.clone())).collect();
        Ok(dependency_order(map)?.into_iter().map(|c| c.name).collect())
    }

    #[test]
    fn dependencies_come_first() {
        let crates = [
            krate("connections", &["connections-core", "connections-sql", "connections-snowflake"]),
            krate("connections-cli", &["connections"]),
            krate("connections-core", &[]),
            krate("connections-snowflake", &["connections-core"]),
            krate("connections-sql", &["connections-core"]),
        ];
        assert_eq!(
            order(&crates).unwrap(),
            ["connections-core", "connections-snowflake", "connections-sql", "connections", "connections-cli"]
        );
    }

    /// A crate with a library and a binary, as `cargo metadata` describes it.
    fn cli() -> Crate {
        let mut krate = krate("connections-cli", &[]);
        krate.metadata = serde_json::json!({
            "readme": "README.md",
            "targets": [
                { "kind": ["lib"], "src_path": "crates/connections-cli/src/lib.rs" },
                { "kind": ["bin"], "src_path": "crates/connections-cli/src/main.rs" },
                { "kind": ["test"], "src_path": "crates/connections-cli/tests/cli.rs" },
            ],
        });
        krate
    }

    #[test]
    fn a_complete_package_passes() {
        let files = [
            "Cargo.toml",
            "Cargo.toml.orig",
            "README.md",
            "LICENSE-MIT",
            "LICENSE-APACHE",
            "src/lib.rs",
            "src/main.rs",
        ];
        assert_eq!(package_problems(&cli(), &files, 100 * 1024), Vec::<String>::new());
    }

    #[test]
    fn missing_files_test_data_and_bloat_are_reported() {
        let files = ["Cargo.toml", "LICENSE-MIT", "src/lib.rs", "tests/cli.rs", "src/fixtures/pets.db", "data/big.CSV"];
        let problems = package_problems(&cli(), &files, MAX_CRATE_BYTES + 1);
        assert_eq!(
            problems,
            [
                "README.md is missing",
                "LICENSE-APACHE is missing",
                "src/main.rs is missing",
                "tests/cli.rs is test data or build output (narrow `include` in the manifest)",
                "src/fixtures/pets.db is test data or build output (narrow `include` in the manifest)",
                "data/big.CSV is test data or build output (narrow `include` in the manifest)",
                "512.0 KiB, over the 512 KiB budget",
            ]
        );
    }

    #[test]
    fn cycles_are_refused() {
        let crates = [krate("a", &["b"]), krate("b", &["a"]), krate("c", &[])];
        let err = order(&crates).unwrap_err().to_string();
        assert!(err.contains("cycle: a, b"), "{err}");
    }
}
