//! The SnowSQL file `~/.snowsql/config`: an INI file whose `[connections.<name>]` (or
//! `[connections]`) section holds SnowSQL's spellings of the connection keys.

use std::path::{Path, PathBuf};

use connections_core::toml::{Table, Value};
use connections_core::{ConfigOrigin, ConfigProblem, Error, Result};
use connections_snowflake::Source;

/// The Snowflake key a SnowSQL key stands for: `accountname` → `account`, `username` → `user`,
/// `dbname` → `database`, `schemaname` → `schema`, `warehousename` → `warehouse`,
/// `rolename` → `role` (Streamlit's rule: `name` dropped from the end, `db` → `database`);
/// other keys as they are.
///
/// ```
/// use connections_snowpark::snowsql_key;
/// assert_eq!(snowsql_key("accountname"), "account");
/// assert_eq!(snowsql_key("dbname"), "database");
/// assert_eq!(snowsql_key("password"), "password");
/// ```
pub fn snowsql_key(key: &str) -> &str {
    let key = key.strip_suffix("name").filter(|k| !k.is_empty()).unwrap_or(key);
    if key == "db" { "database" } else { key }
}

/// A SnowSQL configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnowsqlFile {
    path: PathBuf,
}

impl SnowsqlFile {
    /// The file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `~/.snowsql/config` of the current user (`HOME`, else `USERPROFILE`); `None` without
    /// either.
    pub fn in_home() -> Option<Self> {
        let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
        Some(Self::at(Path::new(&home).join(".snowsql").join("config")))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection `name` of the file, its keys renamed to the Snowflake spellings:
    /// `[connections.<name>]` if the file has it, else `[connections]`; `None` when the file
    /// does not exist or has neither. A file that cannot be parsed is an error naming it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("config");
    /// std::fs::write(&path, "[connections.pets]\naccountname = myorg-acct\nusername = jerry\n").unwrap();
    /// let source = connections_snowpark::SnowsqlFile::at(&path).connection("pets").unwrap().unwrap();
    /// assert_eq!(source.values()["account"].as_str(), Some("myorg-acct"));
    /// assert_eq!(source.values()["user"].as_str(), Some("jerry"));
    /// ```
    pub fn connection(&self, name: &str) -> Result<Option<Source>> {
        if !self.path.is_file() {
            return Ok(None);
        }
        // backslashes are kept (Windows paths, passwords); quotes around a value are dropped
        let options = ini::ParseOption { enabled_escape: false, ..ini::ParseOption::default() };
        let ini = ini::Ini::load_from_file_opt(&self.path, options).map_err(|e| self.error(name, &e))?;
        let named = format!("connections.{name}");
        let (label, section) = match (ini.section(Some(named.as_str())), ini.section(Some("connections"))) {
            (Some(section), _) => (format!("[{named}] of {}", self.path.display()), section),
            (None, Some(section)) => (format!("[connections] of {}", self.path.display()), section),
            (None, None) => return Ok(None),
        };
        let mut values = Table::new();
        for (key, value) in section {
            values.insert(snowsql_key(key).to_owned(), Value::String(value.to_owned()));
        }
        Ok(Some(Source::new(ConfigOrigin::File(self.path.clone()), label, values)))
    }

    /// The error of a file that cannot be read or parsed: its path and the position, never a
    /// value.
    fn error(&self, name: &str, err: &ini::Error) -> Error {
        let reason = match err {
            ini::Error::Io(e) => format!("cannot read the SnowSQL file: {e}"),
            ini::Error::Parse(e) => format!("the SnowSQL file is not valid INI (line {}, column {})", e.line, e.col),
        };
        Error::Config {
            name: name.to_owned(),
            key: String::new(),
            origin: Some(ConfigOrigin::File(self.path.clone())),
            problem: Box::new(ConfigProblem::Invalid { reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, name: &str) -> Option<Table> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, text).unwrap();
        SnowsqlFile::at(&path).connection(name).unwrap().map(|s| s.values().clone())
    }

    #[test]
    fn quotes_are_dropped_and_backslashes_kept() {
        let values = read("[connections.a]\npassword = \"p\\w#1\"\nprivate_key_path = C:\\keys\\k.p8\n", "a").unwrap();
        assert_eq!(values["password"].as_str(), Some("p\\w#1"));
        assert_eq!(values["private_key_path"].as_str(), Some("C:\\keys\\k.p8"));
    }

    #[test]
    fn the_named_section_wins_and_the_general_one_is_the_fallback() {
        let text =
            "[connections]\naccountname = general\n[connections.a]\naccountname = named\n[options]\nlog_level = x\n";
        assert_eq!(read(text, "a").unwrap()["account"].as_str(), Some("named"));
        let general = read(text, "b").unwrap();
        assert_eq!(general["account"].as_str(), Some("general"));
        assert_eq!(general.len(), 1, "{general:?}");
        assert!(read("[options]\nlog_level = x\n", "a").is_none());
        assert!(SnowsqlFile::at("/no/such/snowsql/config").connection("a").unwrap().is_none());
    }
}
