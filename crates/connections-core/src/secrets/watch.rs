//! Watching the secrets paths (and the `config.toml` files that may list them) with `notify`.
//!
//! A path that does not exist yet is watched through its nearest existing ancestor, so a file or
//! folder created later is noticed; after each batch of events the watches are planned again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};

use crate::error::{Error, Result};

/// A running watcher. Dropping it stops watching.
pub(crate) struct FileWatcher {
    debouncer: Debouncer<RecommendedWatcher>,
    /// What is watched now: (folder, recursive).
    watched: BTreeSet<(PathBuf, bool)>,
    /// The paths whose changes matter.
    interesting: Vec<PathBuf>,
}

impl FileWatcher {
    /// Starts a watcher that calls `on_change` with the changed paths after `debounce` of quiet.
    pub(crate) fn start<F>(debounce: Duration, mut on_change: F) -> Result<Self>
    where
        F: FnMut(Vec<PathBuf>) + Send + 'static,
    {
        let debouncer = new_debouncer(debounce, move |events: DebounceEventResult| match events {
            Ok(events) => on_change(events.into_iter().map(|e| e.path).collect()),
            Err(error) => tracing::warn!(%error, "error while watching the secrets files"),
        })
        .map_err(|e| Error::Watch { path: PathBuf::new(), source: Box::new(e) })?;
        Ok(Self { debouncer, watched: BTreeSet::new(), interesting: Vec::new() })
    }

    /// Watches `paths` (plans the folders to watch again; adds and removes watches as needed).
    /// Returns the watches that could not be added; the others work regardless.
    pub(crate) fn update(&mut self, paths: Vec<PathBuf>) -> Vec<Error> {
        let wanted: BTreeSet<(PathBuf, bool)> = paths.iter().filter_map(|p| watch_target(p)).collect();
        let watcher = self.debouncer.watcher();
        for (path, _) in self.watched.difference(&wanted) {
            let _ = watcher.unwatch(path); // it may have been deleted, which removed the watch
        }
        let mut errors = Vec::new();
        let mut now_watched = BTreeSet::new();
        for target in wanted {
            if !self.watched.contains(&target) {
                let mode = if target.1 { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
                if let Err(e) = watcher.watch(&target.0, mode) {
                    errors.push(Error::Watch { path: target.0.clone(), source: Box::new(e) });
                    continue;
                }
            }
            now_watched.insert(target);
        }
        self.watched = now_watched;
        self.interesting = paths;
        errors
    }

    /// Whether a change at `changed` may change the secrets: it is a watched path, lies inside a
    /// watched directory of secrets, or is a folder on the way to one.
    pub(crate) fn is_relevant(&self, changed: &Path) -> bool {
        self.interesting.iter().any(|p| changed.starts_with(p) || p.starts_with(changed))
    }
}

/// The folder to watch for `path`: an existing folder itself (recursively, a directory of
/// secrets); otherwise the nearest existing ancestor, non-recursively.
fn watch_target(path: &Path) -> Option<(PathBuf, bool)> {
    if path.is_dir() {
        return Some((path.to_owned(), true));
    }
    path.ancestors().skip(1).find(|a| a.is_dir()).map(|a| (a.to_owned(), false))
}
