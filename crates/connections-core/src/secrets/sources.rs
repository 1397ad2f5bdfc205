//! Which paths are read, in which order: the search list.

use std::path::{Path, PathBuf};

use toml::Value;

use super::load;
use crate::error::{Error, Result};

/// The folder Streamlit keeps its files in, below the home and the project directory.
const STREAMLIT_DIR: &str = ".streamlit";

/// Where a store looks for secrets.
#[derive(Clone, Debug)]
pub(crate) struct Sources {
    /// Stands in for `~`: the global `~/.streamlit/` lives here.
    pub(crate) home: Option<PathBuf>,
    /// Stands in for the working directory: `./.streamlit/` lives here, and relative paths
    /// resolve against it.
    pub(crate) project: PathBuf,
    /// An explicit list, replacing both the default list and `config.toml`.
    pub(crate) explicit: Option<Vec<PathBuf>>,
}

impl Sources {
    /// The `config.toml` files that may set `[secrets] files`, in precedence order.
    pub(crate) fn config_files(&self) -> Vec<PathBuf> {
        if self.explicit.is_some() {
            return Vec::new();
        }
        self.streamlit_dirs().map(|dir| dir.join("config.toml")).collect()
    }

    /// The search list: the explicit list, else the last `[secrets] files` found in a
    /// `config.toml`, else `~/.streamlit/secrets.toml` then `./.streamlit/secrets.toml`.
    /// Later entries win.
    pub(crate) fn resolve(&self) -> Result<Vec<PathBuf>> {
        if let Some(explicit) = &self.explicit {
            return Ok(explicit.iter().map(|p| self.project.join(p)).collect());
        }
        let mut configured = None;
        for config in self.config_files() {
            if let Some(files) = self.files_from_config(&config)? {
                configured = Some(files);
            }
        }
        if let Some(files) = configured {
            return Ok(files);
        }
        let mut defaults: Vec<PathBuf> = self.streamlit_dirs().map(|dir| dir.join("secrets.toml")).collect();
        defaults.dedup();
        Ok(defaults)
    }

    fn streamlit_dirs(&self) -> impl Iterator<Item = PathBuf> {
        let home = self.home.as_deref().map(|h| h.join(STREAMLIT_DIR));
        home.into_iter().chain([self.project.join(STREAMLIT_DIR)])
    }

    /// Reads `[secrets] files` from one `config.toml`, if the file exists and sets it.
    fn files_from_config(&self, config: &Path) -> Result<Option<Vec<PathBuf>>> {
        let Some(text) = load::read_text(config)? else { return Ok(None) };
        let table = load::parse_toml(config, &text)?;
        let invalid = |key: &str, expected: &str| Error::InvalidConfig {
            path: config.to_owned(),
            key: key.to_owned(),
            expected: expected.to_owned(),
        };
        let Some(section) = table.get("secrets") else { return Ok(None) };
        let section = section.as_table().ok_or_else(|| invalid("secrets", "expected a table"))?;
        let Some(files) = section.get("files") else { return Ok(None) };
        let expected = "expected an array of paths (strings)";
        let files = files.as_array().ok_or_else(|| invalid("secrets.files", expected))?;
        files
            .iter()
            .map(|f| match f {
                Value::String(s) => Ok(self.project.join(s)),
                _ => Err(invalid("secrets.files", expected)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(home: &Path, project: &Path) -> Sources {
        Sources { home: Some(home.to_owned()), project: project.to_owned(), explicit: None }
    }

    #[test]
    fn default_list_is_global_then_project() {
        let s = sources(Path::new("/h"), Path::new("/p"));
        assert_eq!(
            s.resolve().unwrap(),
            [PathBuf::from("/h/.streamlit/secrets.toml"), PathBuf::from("/p/.streamlit/secrets.toml")]
        );
        // the project is the home: one entry
        assert_eq!(sources(Path::new("/h"), Path::new("/h")).resolve().unwrap().len(), 1);
    }

    #[test]
    fn project_config_overrides_global_config() {
        let dir = tempfile::tempdir().unwrap();
        let (home, project) = (dir.path().join("h"), dir.path().join("p"));
        for (d, list) in [(&home, "['/a.toml']"), (&project, "['rel.toml', 'dir']")] {
            std::fs::create_dir_all(d.join(STREAMLIT_DIR)).unwrap();
            std::fs::write(d.join(".streamlit/config.toml"), format!("[secrets]\nfiles = {list}\n")).unwrap();
        }
        let list = sources(&home, &project).resolve().unwrap();
        assert_eq!(list, [project.join("rel.toml"), project.join("dir")]);
    }

    #[test]
    fn a_bad_files_value_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(STREAMLIT_DIR)).unwrap();
        let config = dir.path().join(".streamlit/config.toml");
        std::fs::write(&config, "[secrets]\nfiles = 'one.toml'\n").unwrap();
        let err = sources(&dir.path().join("nohome"), dir.path()).resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`secrets.files` in {}: expected an array of paths (strings)", config.display())
        );
    }
}
