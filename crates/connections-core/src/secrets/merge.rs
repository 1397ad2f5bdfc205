//! The merge rule: later files win per top-level key, and inside `[connections]` per connection.

use std::collections::HashMap;
use std::path::PathBuf;

use toml::{Table, Value};

use super::key_path::Segment;
use super::load::SourceFile;

/// The key holding one table per connection.
pub(crate) const CONNECTIONS: &str = "connections";

/// Which file each merged unit came from, as an index into the list of files.
///
/// A unit is a top-level key or, inside a `[connections]` table, one connection's section: a
/// unit always comes whole from one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Origins {
    top: HashMap<String, usize>,
    connections: HashMap<String, usize>,
}

impl Origins {
    /// The index of the file that supplied the value at `keys`, if any file did.
    pub(crate) fn of(&self, keys: &[Segment]) -> Option<usize> {
        let top = keys.first()?.as_key()?;
        let name = keys.get(1).and_then(Segment::as_key);
        match name.and_then(|name| self.connections.get(name)) {
            Some(index) if top == CONNECTIONS => Some(*index),
            _ => self.top.get(top).copied(),
        }
    }
}

/// Merges files in order; see the module documentation for the rule. Keys keep the position of
/// their first appearance. Values are moved, never copied: merging costs no memory beyond the
/// tables read. Returns the merged table, where each unit came from, and the files' paths.
pub(crate) fn merge(files: Vec<SourceFile>) -> (Table, Origins, Vec<PathBuf>) {
    let mut merged = Table::new();
    let mut origins = Origins::default();
    let mut paths = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        paths.push(file.path);
        for (key, value) in file.table {
            let both_tables =
                key == CONNECTIONS && value.is_table() && merged.get(CONNECTIONS).is_some_and(Value::is_table);
            if both_tables {
                let (Some(Value::Table(into)), Value::Table(sections)) = (merged.get_mut(CONNECTIONS), value) else {
                    continue;
                };
                for (name, section) in sections {
                    origins.connections.insert(name.clone(), index);
                    into.insert(name, section);
                }
            } else {
                if key == CONNECTIONS {
                    origins.connections.clear();
                    for name in value.as_table().into_iter().flat_map(Table::keys) {
                        origins.connections.insert(name.clone(), index);
                    }
                }
                origins.top.insert(key.clone(), index);
                merged.insert(key, value);
            }
        }
    }
    (merged, origins, paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segs(keys: &[&str]) -> Vec<Segment> {
        keys.iter().map(|k| Segment::key(*k)).collect()
    }

    fn file(name: &str, toml: &str) -> SourceFile {
        SourceFile { path: PathBuf::from(name), table: toml.parse().unwrap() }
    }

    #[test]
    fn later_file_wins_per_key_and_per_connection() {
        let global = file("g", "a = 1\nb = 2\n[connections.one]\nurl = 'g1'\nx = 1\n[connections.two]\nurl = 'g2'\n");
        let project = file("p", "b = 3\n[connections.one]\nurl = 'p1'\n");
        let (merged, origins, _) = merge(vec![global, project]);
        assert_eq!(merged["a"].as_integer(), Some(1));
        assert_eq!(merged["b"].as_integer(), Some(3));
        let conns = merged[CONNECTIONS].as_table().unwrap();
        // one section comes whole from the project file: `x` is not stitched in from global
        assert_eq!(conns["one"].as_table().unwrap().len(), 1);
        assert_eq!(conns["one"]["url"].as_str(), Some("p1"));
        assert_eq!(conns["two"]["url"].as_str(), Some("g2"));
        assert_eq!(origins.of(&segs(&["connections", "one", "url"])), Some(1));
        assert_eq!(origins.of(&segs(&["connections", "two"])), Some(0));
        assert_eq!(origins.of(&segs(&["b"])), Some(1));
        assert_eq!(origins.of(&segs(&["a"])), Some(0));
        // first-appearance order is kept
        let keys: Vec<&str> = merged.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", CONNECTIONS]);
    }

    #[test]
    fn a_non_table_connections_value_replaces_the_whole_key() {
        let (merged, origins, _) =
            merge(vec![file("g", "[connections.one]\nurl = 'x'\n"), file("p", "connections = 'oops'\n")]);
        assert_eq!(merged[CONNECTIONS].as_str(), Some("oops"));
        assert_eq!(origins.of(&segs(&["connections", "one"])), Some(1));
        let (merged, _, _) =
            merge(vec![file("g", "connections = 'oops'\n"), file("p", "[connections.one]\nurl = 'x'\n")]);
        assert!(merged[CONNECTIONS].is_table());
    }

    type Pairs = Vec<(String, i64)>;

    fn arb_file() -> impl Strategy<Value = (Pairs, Pairs)> {
        let key = prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned);
        let name = prop::sample::select(vec!["x", "y", "z"]).prop_map(str::to_owned);
        (prop::collection::vec((key, any::<i64>()), 0..4), prop::collection::vec((name, any::<i64>()), 0..3))
    }

    proptest! {
        /// Every top-level key holds the value of the last file that sets it, and every
        /// connection section is exactly the section of the last file that declares it.
        #[test]
        fn merge_rule(files in prop::collection::vec(arb_file(), 1..5)) {
            let sources: Vec<SourceFile> = files.iter().enumerate().map(|(i, (tops, conns))| {
                let mut table = Table::new();
                for (k, v) in tops { table.insert(k.clone(), Value::Integer(*v)); }
                let mut connections = Table::new();
                for (n, v) in conns {
                    let mut section = Table::new();
                    section.insert("v".into(), Value::Integer(*v));
                    section.insert(format!("from_{i}"), Value::Boolean(true));
                    connections.insert(n.clone(), Value::Table(section));
                }
                if !connections.is_empty() { table.insert(CONNECTIONS.into(), Value::Table(connections)); }
                SourceFile { path: PathBuf::from(format!("f{i}")), table }
            }).collect();
            let (merged, origins, _) = merge(sources.clone());
            for key in ["a", "b", "c", "d"] {
                let last = sources.iter().enumerate().rev().find(|(_, f)| f.table.contains_key(key));
                prop_assert_eq!(merged.get(key), last.map(|(_, f)| &f.table[key]));
                prop_assert_eq!(origins.of(&segs(&[key])), last.map(|(i, _)| i));
            }
            for name in ["x", "y", "z"] {
                let last = sources.iter().enumerate().rev().find(|(_, f)| {
                    f.table.get(CONNECTIONS).and_then(|c| c.get(name)).is_some()
                });
                let got = merged.get(CONNECTIONS).and_then(|c| c.get(name));
                prop_assert_eq!(got, last.map(|(_, f)| &f.table[CONNECTIONS][name]));
                if let Some((i, _)) = last {
                    prop_assert_eq!(origins.of(&segs(&[CONNECTIONS, name])), Some(i));
                }
            }
        }
    }
}
