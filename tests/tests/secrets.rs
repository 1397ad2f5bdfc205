//! The secrets layer on real files in temporary directories.

#![allow(clippy::unwrap_used, clippy::items_after_statements)] // test code

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use connections::toml::Value;
use connections::{Error, SecretsStore};
use connections_tests::{Project, eventually};
use serde::Deserialize;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn every_toml_value_type_is_readable() {
    let p = Project::new();
    p.write(
        p.project_secrets(),
        r#"
string = "text"
literal = 'C:\path'
multiline = """
two
lines"""
int = -42
hex = 0xff
float = 6.5e-3
bool = true
offset_datetime = 1979-05-27T07:32:00Z
local_datetime = 1979-05-27T07:32:00
local_date = 1979-05-27
local_time = 07:32:00
array = [1, 2, 3]
mixed = ["a", 1, { k = "v" }]
inline = { user = "u", port = 5432 }
site."google.com" = true
dotted.a.b = 1

[[servers]]
name = "alpha"
[[servers]]
name = "beta"

[nested.deeper]
key = "value"
"#,
    );
    let s = p.store().load().unwrap();
    assert_eq!(s.get_str("string").unwrap(), "text");
    assert_eq!(s.get_str("literal").unwrap(), r"C:\path");
    assert_eq!(s.get_str("multiline").unwrap(), "two\nlines");
    assert_eq!(s.get("int").unwrap().and_then(Value::as_integer), Some(-42));
    assert_eq!(s.get("hex").unwrap().and_then(Value::as_integer), Some(255));
    assert_eq!(s.get("float").unwrap().and_then(Value::as_float), Some(6.5e-3));
    assert_eq!(s.get("bool").unwrap().and_then(Value::as_bool), Some(true));
    for (key, text) in [
        ("offset_datetime", "1979-05-27T07:32:00Z"),
        ("local_datetime", "1979-05-27T07:32:00"),
        ("local_date", "1979-05-27"),
        ("local_time", "07:32:00"),
    ] {
        let value = s.get(key).unwrap().and_then(Value::as_datetime).unwrap_or_else(|| panic!("{key} is a datetime"));
        assert_eq!(value.to_string(), text);
    }
    assert_eq!(s.get("array").unwrap().and_then(Value::as_array).map(Vec::len), Some(3));
    assert_eq!(
        s.get("mixed").unwrap().and_then(|v| v.get(2)).and_then(|t| t.get("k")).and_then(Value::as_str),
        Some("v")
    );
    assert_eq!(s.get_str("inline.user").unwrap(), "u");
    assert_eq!(s.get(r#"site."google.com""#).unwrap().and_then(Value::as_bool), Some(true));
    assert_eq!(s.get("dotted.a.b").unwrap().and_then(Value::as_integer), Some(1));
    assert_eq!(s.get_str("nested.deeper.key").unwrap(), "value");
    let keys: Vec<&str> = s.keys().collect();
    assert_eq!(keys[..3], ["string", "literal", "multiline"], "file order is kept");

    #[derive(Deserialize)]
    struct Server {
        name: String,
    }
    let servers: Vec<Server> = s.extract("servers").unwrap();
    assert_eq!(servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["alpha", "beta"]);

    #[derive(Deserialize)]
    struct Inline {
        user: String,
        port: u16,
    }
    let inline: Inline = s.extract("inline").unwrap();
    assert_eq!((inline.user.as_str(), inline.port), ("u", 5432));
    let date: String = s.extract("local_date").unwrap();
    assert_eq!(date, "1979-05-27");
    let whole: BTreeMap<String, Value> = s.extract("").unwrap();
    assert_eq!(whole.len(), s.len());
}

#[test]
fn global_and_project_merge_per_key_and_per_connection() {
    let p = Project::new();
    p.write(
        p.global_secrets(),
        "api_key = 'global'\nregion = 'eu'\n[connections.shared]\nurl = 'g'\npool = 5\n[connections.global_only]\nurl = 'g2'\n",
    );
    p.write(p.project_secrets(), "api_key = 'project'\n[connections.shared]\nurl = 'p'\n");
    let s = p.store().load().unwrap();
    assert_eq!(s.get_str("api_key").unwrap(), "project");
    assert_eq!(s.get_str("region").unwrap(), "eu");
    // global and project connections coexist ...
    assert_eq!(s.get_str("connections.global_only.url").unwrap(), "g2");
    // ... but one connection's section comes whole from one file
    let shared = s.connection("shared").unwrap();
    assert_eq!(shared.get_str("url").unwrap(), "p");
    assert!(shared.get("pool").unwrap().is_none(), "never stitched from two files");
    assert_eq!(shared.origin(), Some(p.project_secrets().as_path()));
    assert_eq!(s.origin("connections.global_only.url").unwrap(), Some(p.global_secrets().as_path()));
    assert_eq!(s.origin("region").unwrap(), Some(p.global_secrets().as_path()));
    assert_eq!(s.files(), [p.global_secrets(), p.project_secrets()]);
}

#[test]
fn config_toml_files_replace_the_default_list() {
    let p = Project::new();
    p.write(p.project_secrets(), "from_default = true\n");
    p.write(p.project().join("conf/a.toml"), "key = 'a'\nonly_a = 1\n");
    p.write(p.project().join("conf/b.toml"), "key = 'b'\n");
    p.write(p.home().join(".streamlit/config.toml"), "[secrets]\nfiles = ['nowhere.toml']\n");
    p.write(p.project().join(".streamlit/config.toml"), "[secrets]\nfiles = ['conf/a.toml', 'conf/b.toml']\n");
    let store = p.store();
    assert_eq!(store.paths().unwrap(), [p.project().join("conf/a.toml"), p.project().join("conf/b.toml")]);
    let s = store.load().unwrap();
    assert_eq!(s.get_str("key").unwrap(), "b");
    assert!(s.contains("only_a").unwrap());
    assert!(!s.contains("from_default").unwrap(), "the configured list replaces the default one");
}

#[test]
fn explicit_files_replace_everything() {
    let p = Project::new();
    p.write(p.project_secrets(), "default = 1\n");
    p.write(p.project().join("x.toml"), "x = 1\n");
    let s = p.builder().files(["x.toml", "missing.toml"]).build().load().unwrap();
    assert!(s.contains("x").unwrap() && !s.contains("default").unwrap());
}

#[test]
fn directory_of_secrets() {
    let p = Project::new();
    let dir = p.project().join("k8s");
    p.write(dir.join("api_key/api_key"), "  sk-live \n");
    p.write(dir.join("db/username"), "admin");
    p.write(dir.join("db/password"), "pw\n");
    p.write(dir.join("db/nested/ignored"), "x");
    p.write(dir.join(".hidden/.file"), "dot");
    let s = p.builder().files([&dir]).build().load().unwrap();
    assert_eq!(s.get_str("api_key").unwrap(), "sk-live", "one file: the value itself, trimmed");
    assert_eq!(s.get_str("db.username").unwrap(), "admin");
    assert_eq!(s.get_str("db.password").unwrap(), "pw");
    assert!(s.get("db.nested").unwrap().is_none(), "sub-sub-folders are ignored");
    assert_eq!(s.get_str(r#"".hidden""#).unwrap(), "dot", "hidden files count");

    p.write(dir.join("stray.txt"), "not in a folder");
    let err = p.builder().files([&dir]).build().load().unwrap_err();
    assert!(matches!(err, Error::SecretsDirEntry { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{} is not a folder", dir.join("stray.txt").display())), "{err}");
}

#[test]
fn invalid_path_is_an_error_but_a_missing_toml_is_skipped() {
    let p = Project::new();
    p.write(p.project().join("ok.toml"), "a = 1\n");
    let s = p.builder().files(["ok.toml", "missing.toml"]).build().load().unwrap();
    assert!(s.contains("a").unwrap());
    let err = p.builder().files(["ok.toml", "missing-dir"]).build().load().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid secrets path {}: expected a `.toml` file or a directory",
            p.project().join("missing-dir").display()
        )
    );
}

#[test]
fn an_empty_file_counts_as_found() {
    let p = Project::new();
    p.write(p.project_secrets(), "# only a comment\n");
    let s = p.store().load().unwrap();
    assert!(s.is_empty());
    assert_eq!(s.files(), [p.project_secrets()]);
}

#[test]
fn nothing_found_lists_every_path_searched() {
    let p = Project::new();
    let err = p.store().load().unwrap_err();
    let Error::SecretsNotFound { searched } = &err else { panic!("{err:?}") };
    assert_eq!(searched, &[p.global_secrets(), p.project_secrets()]);
    assert_eq!(
        err.to_string(),
        format!("no secrets found; searched: {}, {}", p.global_secrets().display(), p.project_secrets().display())
    );
}

#[test]
fn a_malformed_file_names_path_line_and_column() {
    let p = Project::new();
    p.write(p.project_secrets(), "ok = 1\n[connections.db]\nurl = \n");
    let err = p.store().load().unwrap_err();
    let Error::Parse { path, line, column, .. } = &err else { panic!("{err:?}") };
    assert_eq!((path, *line, *column), (&p.project_secrets(), 3, 7));
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("cannot parse {} at line 3, column 7: ", p.project_secrets().display())),
        "{shown}"
    );
}

#[test]
fn one_malformed_file_fails_the_whole_load() {
    let p = Project::new();
    p.write(p.global_secrets(), "good = 'yes'\n");
    p.write(p.project_secrets(), "bad = [\n");
    let store = p.store();
    assert!(matches!(store.load(), Err(Error::Parse { .. })));
    assert!(!store.is_loaded(), "a failed load stores nothing");
    // and the next access tries again
    p.write(p.project_secrets(), "bad = []\n");
    assert_eq!(store.load().unwrap().get_str("good").unwrap(), "yes");
}

#[test]
fn invalid_utf8_is_an_error_naming_the_file() {
    let p = Project::new();
    p.write(p.project_secrets(), b"key = \"\xff\"\n");
    let err = p.store().load().unwrap_err();
    assert_eq!(err.to_string(), format!("cannot read {}", p.project_secrets().display()));
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(cause, "invalid UTF-8 at byte 7");
}

#[test]
fn missing_and_mistyped_keys_name_the_key_and_the_file() {
    let p = Project::new();
    p.write(p.project_secrets(), "[connections.db]\nport = 'five'\nhost = 'h'\n");
    let s = p.store().load().unwrap();
    let err = s.get_str("connections.db.user").unwrap_err();
    assert_eq!(err.to_string(), format!("no secret `connections.db.user` in {}", p.project_secrets().display()));
    let err = s.get_str("connections.db").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("secret `connections.db` (from {}): found a table, expected a string", p.project_secrets().display())
    );

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Db {
        host: String,
        port: u16,
    }
    let err = s.connection("db").unwrap().extract::<Db>("").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("secret `connections.db.port` (from {}): found a string, expected u16", p.project_secrets().display())
    );
    assert!(!format!("{err:?}").contains("five"));
}

#[test]
fn section_change_ignores_key_order_and_other_sections() {
    let p = Project::new();
    p.write(p.project_secrets(), "root = 1\n[connections.a]\nx = 1\ny = 2\n[connections.b]\nz = 1\n");
    let store = p.store();
    let before = store.load().unwrap();
    p.write(p.project_secrets(), "root = 2\n# comment\n[connections.a]\ny = 2\nx = 1\n[connections.b]\nz = 2\n");
    let after = store.reload().unwrap();
    assert!(!before.connection_changed(&after, "a"), "reordered keys are no change");
    assert!(before.connection_changed(&after, "b"));
    assert!(!before.connection_changed(&after, "absent"));
    assert!(before.changed_at(&after, "root").unwrap());
    p.write(p.project_secrets(), "root = 2\n[connections.b]\nz = 2\n");
    assert!(after.connection_changed(&store.reload().unwrap(), "a"), "a removed section is a change");
}

#[test]
fn snapshots_are_immutable() {
    let p = Project::new();
    p.write(p.project_secrets(), "k = 'one'\n");
    let store = p.store();
    let first = store.load().unwrap();
    p.write(p.project_secrets(), "k = 'two'\n");
    let second = store.reload().unwrap();
    assert_eq!(first.get_str("k").unwrap(), "one", "what was handed out never changes");
    assert_eq!(second.get_str("k").unwrap(), "two");
    assert_eq!(store.load().unwrap(), second);
}

#[test]
fn an_edit_is_reloaded_and_published() {
    let p = Project::new();
    p.write(p.project_secrets(), "k = 'one'\n");
    let store = p.watching_store();
    let mut rx = store.subscribe();
    assert_eq!(store.load().unwrap().get_str("k").unwrap(), "one");
    rx.mark_unchanged();
    p.write(p.project_secrets(), "k = 'two'\n");
    assert!(
        eventually(WAIT, || store.load().is_ok_and(|s| s.get_str("k").is_ok_and(|k| k == "two"))),
        "the edit was not picked up"
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().secrets().get_str("k").unwrap(), "two");
}

#[test]
fn a_malformed_edit_keeps_the_last_good_secrets_until_fixed() {
    let p = Project::new();
    p.write(p.project_secrets(), "k = 'good'\n");
    let store = p.watching_store();
    store.load().unwrap();
    p.write(p.project_secrets(), "k = 'unterminated\n");
    assert!(eventually(WAIT, || store.last_error().is_some()), "the malformed edit was not reported");
    let error = store.last_error().unwrap();
    assert!(matches!(*error, Error::Parse { line: 1, .. }), "{error:?}");
    assert_eq!(store.load().unwrap().get_str("k").unwrap(), "good", "last good secrets kept");
    p.write(p.project_secrets(), "k = 'fixed'\n");
    assert!(
        eventually(WAIT, || store.load().is_ok_and(|s| s.get_str("k").is_ok_and(|k| k == "fixed"))),
        "the fix was not picked up"
    );
    assert!(store.last_error().is_none());
}

#[test]
fn a_file_created_after_start_is_picked_up() {
    let p = Project::new();
    p.write(p.global_secrets(), "g = 1\n");
    std::fs::create_dir_all(p.project()).unwrap();
    let store = p.watching_store();
    assert!(!store.load().is_ok_and(|s| s.contains("p").unwrap()));
    // neither ./.streamlit nor the file exists yet
    p.write(p.project_secrets(), "p = 2\n");
    assert!(
        eventually(WAIT, || store.load().is_ok_and(|s| s.contains("p").unwrap())),
        "the new file was not picked up"
    );
    assert_eq!(store.status().generation(), 2);
}

#[test]
fn a_store_that_could_not_load_recovers_when_the_file_appears() {
    let p = Project::new();
    std::fs::create_dir_all(p.project()).unwrap();
    let store = p.watching_store();
    assert!(matches!(store.load(), Err(Error::SecretsNotFound { .. })));
    p.write(p.project_secrets(), "late = true\n");
    assert!(eventually(WAIT, || store.is_loaded()));
    assert!(store.load().unwrap().contains("late").unwrap());
}

#[test]
fn unrelated_files_do_not_publish() {
    let p = Project::new();
    p.write(p.project_secrets(), "k = 1\n");
    let store = p.watching_store();
    store.load().unwrap();
    let mut rx = store.subscribe();
    rx.mark_unchanged();
    p.write(p.project().join(".streamlit/other.txt"), "x");
    p.write(p.project_secrets(), "k = 1\n# same values, new comment\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!rx.has_changed().unwrap(), "nothing changed in value");
}

#[test]
fn no_secret_value_leaks_through_debug_display_or_errors() {
    const SECRET: &str = "hunter2-Zq9";
    let p = Project::new();
    p.write(
        p.project_secrets(),
        format!(
            "password = '{SECRET}'\nlist = ['{SECRET}']\n[connections.db]\npassword = '{SECRET}'\nport = '{SECRET}'\n"
        ),
    );
    let store = p.store();
    let s = store.load().unwrap();
    let section = s.connection("db").unwrap();
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Db {
        port: u16,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Mode {
        A,
    }
    let errors: Vec<Error> = vec![
        section.extract::<Db>("").unwrap_err(),
        s.extract::<Mode>("password").unwrap_err(),
        s.extract::<u8>("list").unwrap_err(),
        s.get_str("list").unwrap_err(),
        s.section("password").unwrap_err(),
    ];
    let mut shown =
        vec![format!("{store:?}"), format!("{s:?}"), format!("{section:?}"), format!("{:?}", store.status())];
    for e in &errors {
        shown.push(format!("{e} {e:?}"));
    }
    // a malformed file, and its reload error kept by the store
    p.write(p.project_secrets(), format!("password = '{SECRET}\n"));
    let reload = store.reload().unwrap_err();
    shown.push(format!("{reload} {reload:?} {store:?}"));
    let fresh = p.store().load().unwrap_err();
    shown.push(format!("{fresh} {fresh:?}"));
    for text in &shown {
        assert!(!text.contains(SECRET), "leaked: {text}");
    }
    assert!(shown[1].contains("password") && shown[1].contains("***"), "{}", shown[1]);
}

#[test]
fn process_wide_store_can_be_installed_once() {
    let p = Project::new();
    p.write(p.project_secrets(), "OpenAI_key = 'sk-test'\n");
    let store: SecretsStore = p.store();
    connections::set_secrets_store(store.clone()).unwrap();
    assert_eq!(connections::secrets().unwrap().get_str("OpenAI_key").unwrap(), "sk-test");
    assert!(connections::set_secrets_store(store).is_err(), "already in use");
}

#[test]
fn key_paths_address_array_items_and_quoted_keys() {
    let p = Project::new();
    p.write(
        p.project_secrets(),
        r#"
matrix = [[1, 2], [3, 4]]
[[servers]]
name = "alpha"
[[servers]]
name = "beta"
ports = [80, 443]
[connections."my.db"]
url = "sqlite://"
[connections.'say "hi"']
url = "quoted"
[connections.'back\slash']
url = "back"
"#,
    );
    let s = p.store().load().unwrap();
    assert_eq!(s.get_str("servers[0].name").unwrap(), "alpha");
    assert_eq!(s.get_str("servers[1].name").unwrap(), "beta");
    assert_eq!(s.get("servers[1].ports[1]").unwrap().and_then(Value::as_integer), Some(443));
    assert_eq!(s.get("matrix[1][0]").unwrap().and_then(Value::as_integer), Some(3));
    assert_eq!(s.get("servers[2]").unwrap(), None);
    assert!(s.contains("servers[1]").unwrap());
    assert_eq!(s.get_str(r#"connections."my.db".url"#).unwrap(), "sqlite://");
    assert_eq!(s.get_str("connections.'my.db'.url").unwrap(), "sqlite://");
    assert_eq!(s.get_str(r#"connections."say \"hi\"".url"#).unwrap(), "quoted");
    assert_eq!(s.get_str(r#"connections."back\\slash".url"#).unwrap(), "back");
    assert!(s.origin("servers[0].name").unwrap().is_some());
    let server: BTreeMap<String, String> = s.extract("servers[0]").unwrap();
    assert_eq!(server["name"], "alpha");
    let section = s.section("servers[1]").unwrap();
    assert_eq!(section.path(), "servers[1]");
    assert_eq!(section.get("ports[0]").unwrap().and_then(Value::as_integer), Some(80));
    // a missing item names the path as written
    let err = s.get_str("servers[5].name").unwrap_err();
    assert!(err.to_string().starts_with("no secret `servers[5].name` in "), "{err}");
    let err = s.get_str(r#"connections."say \"hi\"".user"#).unwrap_err();
    assert!(err.to_string().starts_with(r#"no secret `connections."say \"hi\"".user` in "#), "{err}");
}

#[test]
fn malformed_paths_are_errors_in_every_accessor() {
    let p = Project::new();
    p.write(p.project_secrets(), "a = 1\n[t]\nk = 'v'\n");
    let s = p.store().load().unwrap();
    let section = s.section("t").unwrap();
    for bad in ["a..b", "a[", "a[x]", r#""unterminated"#, "a[0", "a.", ""] {
        let is_path_error = |r: Result<(), Error>| matches!(r, Err(Error::KeyPath { .. }));
        if !bad.is_empty() {
            assert!(is_path_error(s.get(bad).map(drop)), "get {bad}");
            assert!(is_path_error(s.contains(bad).map(drop)), "contains {bad}");
            assert!(is_path_error(s.origin(bad).map(drop)), "origin {bad}");
            assert!(is_path_error(s.changed_at(&s, bad).map(drop)), "changed_at {bad}");
            assert!(is_path_error(s.section(bad).map(drop)), "section {bad}");
            assert!(is_path_error(s.extract::<Value>(bad).map(drop)), "extract {bad}");
            assert!(is_path_error(section.get(bad).map(drop)), "section.get {bad}");
            assert!(is_path_error(section.extract::<Value>(bad).map(drop)), "section.extract {bad}");
            assert!(is_path_error(section.get_str(bad).map(drop)), "section.get_str {bad}");
        }
        // "" names the root, which is no single value
        assert!(is_path_error(s.require(bad).map(drop)), "require {bad}");
        assert!(is_path_error(s.get_str(bad).map(drop)), "get_str {bad}");
    }
    let err = s.get("a[x]").unwrap_err();
    assert_eq!(err.to_string(), r#"invalid key path "a[x]": an array index must be a number, as in `[0]`"#);
}

#[test]
fn a_connection_entry_that_is_not_a_table_says_so() {
    let p = Project::new();
    p.write(p.project_secrets(), "[connections]\nc = 5\n[connections.ok]\nurl = 'u'\n");
    let s = p.store().load().unwrap();
    let err = s.try_connection("c").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("secret `connections.c` (from {}): found an integer, expected a table", p.project_secrets().display())
    );
    assert!(s.try_connection("ok").unwrap().is_some());
    assert!(s.try_connection("absent").unwrap().is_none());
    p.write(p.project_secrets(), "connections = 'oops'\n");
    let err = p.store().load().unwrap().try_connection("c").unwrap_err();
    assert!(err.to_string().starts_with("secret `connections` (from "), "{err}");
    assert!(err.to_string().ends_with("found a string, expected a table"), "{err}");
}

/// A type whose `Deserialize` quotes the text it rejects, as many real types do.
#[derive(Debug)]
struct Quoting;

impl<'de> Deserialize<'de> for Quoting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Err(serde::de::Error::custom(format!("cannot use {text:?} (raw: {text}) (escaped: {})", text.escape_default())))
    }
}

#[test]
fn extract_errors_mask_values_of_every_shape() {
    let shapes = [
        "line one\nline two secret-A1",
        r#"has "double" quotes secret-B2"#,
        "it's single secret-C3",
        r"back\slash\n secret-D4",
        "tab\there\u{7}bell secret-E5",
        "\u{e9}t\u{e9} \u{1F512} secret-F6",
    ];
    let p = Project::new();
    let (mut top, mut tables) = (String::new(), String::new());
    for (i, shape) in shapes.iter().enumerate() {
        let quoted = Value::String((*shape).to_owned()).to_string();
        write!(top, "s{i} = {quoted}\nlist{i} = [{quoted}]\n").unwrap();
        write!(tables, "[t{i}]\nport = {quoted}\nmode = {quoted}\n").unwrap();
    }
    let file = top + &tables;
    p.write(p.project_secrets(), file);
    let s = p.store().load().unwrap();

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Port {
        port: u16,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Mode {
        Fast,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct WithMode {
        mode: Mode,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct WithQuoting {
        port: Quoting,
    }
    for i in 0..shapes.len() {
        let errors = [
            s.extract::<Port>(&format!("t{i}")).unwrap_err(),
            s.extract::<WithMode>(&format!("t{i}")).unwrap_err(),
            s.extract::<Mode>(&format!("s{i}")).unwrap_err(),
            s.extract::<u32>(&format!("s{i}")).unwrap_err(),
            s.extract::<Quoting>(&format!("s{i}")).unwrap_err(),
            s.extract::<Vec<Quoting>>(&format!("list{i}")).unwrap_err(),
            s.extract::<WithQuoting>(&format!("t{i}")).unwrap_err(),
            s.section(&format!("t{i}")).unwrap().extract::<WithQuoting>("").unwrap_err(),
            s.extract::<BTreeMap<String, (Quoting, u8)>>("").unwrap_err(),
        ];
        for err in &errors {
            let shown = format!("{err} {err:?}");
            let marker = &shapes[i][shapes[i].len() - 9..];
            assert!(!shown.contains(marker), "shape {i} leaked: {shown}");
            for line in shapes[i].lines() {
                assert!(!shown.contains(line), "shape {i} leaked a line: {shown}");
            }
        }
        assert!(errors[5].to_string().starts_with(&format!("secret `list{i}[0]` (from ")), "{}", errors[5]);
        assert!(errors[4].to_string().contains("cannot use *** (raw: ***)"), "{}", errors[4]);
    }
}

/// Whether no snapshot arrives for a while.
async fn quiet(changes: &mut connections::SecretsChanges) -> bool {
    tokio::time::timeout(Duration::from_millis(400), changes.next()).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_yields_only_new_snapshots_not_reload_errors() {
    let p = Project::new();
    p.write(p.project_secrets(), "k = 'one'\n");
    let store = p.watching_store();
    store.load().unwrap();
    let mut changes = store.changed();
    // a malformed edit: reported in the status, not yielded
    p.write(p.project_secrets(), "k = 'unterminated\n");
    let reported = tokio::task::spawn_blocking({
        let store = store.clone();
        move || eventually(WAIT, || store.last_error().is_some())
    });
    assert!(reported.await.unwrap(), "the malformed edit was not reported");
    assert!(quiet(&mut changes).await, "a reload error was yielded as a change");
    assert!(changes.try_next().is_none());
    // the fix: yielded once
    p.write(p.project_secrets(), "k = 'two'\n");
    let snapshot = tokio::time::timeout(WAIT, changes.next()).await.expect("the fix was yielded").unwrap();
    assert_eq!(snapshot.get_str("k").unwrap(), "two");
    assert!(store.last_error().is_none());
    // a comment only: nothing new
    p.write(p.project_secrets(), "k = 'two' # same value\n");
    assert!(quiet(&mut changes).await, "an edit without a new value was yielded");
    drop(store);
}

/// Loads `store` on another thread; the result, or `None` if it takes longer than `limit`.
fn load_within(store: &SecretsStore, limit: Duration) -> Option<Result<connections::Secrets, Error>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let store = store.clone();
    std::thread::spawn(move || {
        let _ = tx.send(store.load());
    });
    rx.recv_timeout(limit).ok()
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_device_is_an_error_naming_the_path_not_a_hang() {
    let p = Project::new();
    std::fs::create_dir_all(p.project().join(".streamlit")).unwrap();
    let fifo = p.project_secrets();
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let err = load_within(&p.store(), Duration::from_secs(5)).expect("loading a FIFO hung").unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("cannot read {}", fifo.display()));
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(cause, "a FIFO (named pipe), not a regular file");

    // /dev/zero given as `x.toml` (through a link, as a configured path would be)
    let zero = p.project().join("x.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let store = SecretsStore::builder().files([&zero]).build();
    let err = load_within(&store, Duration::from_secs(5)).expect("loading /dev/zero hung").unwrap_err();
    assert_eq!(err.to_string(), format!("cannot read {}", zero.display()));
    assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "a character device, not a regular file");

    // also from async code, on either kind of runtime (the read leaves the worker)
    for multi in [true, false] {
        let mut builder = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        let runtime = builder.enable_all().build().unwrap();
        let store = p.store();
        let result = runtime.block_on(async move { tokio::spawn(async move { store.load() }).await.unwrap() });
        assert!(matches!(result, Err(Error::Read { .. })), "{result:?}");
    }
}
