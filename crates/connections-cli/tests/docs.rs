//! The shell examples of the user guide run as written: every `sh` block of `docs/cli.md` and
//! `docs/getting-started.md`, in order, in a fresh project holding the guide's secrets file (a
//! `toml` block starting with `# .streamlit/secrets.toml`), with the real binary first on `PATH`.
//! Lines that build or install with `cargo` are left to the build itself.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)] // test code

mod common;

use std::path::Path;

use common::Project;

enum Block {
    Secrets(String),
    Shell(Vec<String>),
}

/// The `toml` secrets blocks and the `sh` blocks of a Markdown page, in order.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else { continue };
        let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
        match lang.trim() {
            "toml" if body.first().is_some_and(|l| l.trim() == "# .streamlit/secrets.toml") => {
                blocks.push(Block::Secrets(body.join("\n") + "\n"));
            }
            "sh" => blocks.push(Block::Shell(body.iter().map(|l| (*l).to_owned()).collect())),
            _ => {}
        }
    }
    blocks
}

fn run_page(page: &str) {
    let markdown = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(page)).unwrap();
    let project = Project::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_connections")).parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut commands = 0;
    for block in blocks(&markdown) {
        match block {
            Block::Secrets(text) => project.secrets(&text),
            Block::Shell(lines) => {
                for line in lines {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') || line.starts_with("cargo ") {
                        continue;
                    }
                    let output = std::process::Command::new("sh")
                        .args(["-c", line])
                        .current_dir(project.dir())
                        .env("HOME", project.home())
                        .env("PATH", &path)
                        .output()
                        .unwrap();
                    assert!(
                        output.status.success(),
                        "{page}: `{line}` failed:\n{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                    commands += 1;
                }
            }
        }
    }
    assert!(commands >= 5, "{page}: only {commands} commands found");
}

#[test]
fn the_cli_guide_runs() {
    run_page("docs/cli.md");
}

#[test]
fn the_getting_started_guide_runs() {
    run_page("docs/getting-started.md");
}
