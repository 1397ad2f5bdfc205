//! Reading one secrets path: a TOML file or a directory of secrets.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::{Error, Result};

/// The secrets read from one configured path.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile {
    /// The configured path (a file or a directory).
    pub(crate) path: PathBuf,
    /// Its contents.
    pub(crate) table: Table,
}

/// Reads one configured path. `Ok(None)` means "nothing there" (a missing `.toml` file or a
/// directory without any secret file), which is not an error.
pub(crate) fn read_path(path: &Path) -> Result<Option<SourceFile>> {
    let table = if path.extension().is_some_and(|ext| ext == "toml") {
        match read_text(path)? {
            Some(text) => Some(parse_toml(path, &text)?),
            None => None,
        }
    } else if path.is_dir() {
        read_directory(path)?
    } else {
        return Err(Error::InvalidSecretsPath { path: path.to_owned() });
    };
    Ok(table.map(|table| SourceFile { path: path.to_owned(), table }))
}

/// Reads a UTF-8 text file; `Ok(None)` if it does not exist.
///
/// Only a regular file (or a link to one) is read: a FIFO, a socket or a device (`/dev/zero`
/// named `x.toml`) is an error naming the path, checked before opening (opening a FIFO blocks
/// until a writer appears; reading a device may never end) and again on the open handle.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>> {
    let read_err = |source| Error::Read { path: path.to_owned(), source };
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(read_err(not_a_file(&meta))),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_err(source)),
    }
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_err(source)),
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(not_a_file(&meta)));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
    io::Read::read_to_end(&mut file, &mut bytes).map_err(read_err)?;
    String::from_utf8(bytes).map(Some).map_err(|e| {
        read_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        ))
    })
}

/// The cause for a path that is not a regular file, naming what it is.
fn not_a_file(meta: &fs::Metadata) -> io::Error {
    let kind = meta.file_type();
    let what = if kind.is_dir() {
        "a directory"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt as _;
            if kind.is_fifo() {
                "a FIFO (named pipe)"
            } else if kind.is_char_device() {
                "a character device"
            } else if kind.is_block_device() {
                "a block device"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            }
        }
        #[cfg(not(unix))]
        {
            "not a regular file"
        }
    };
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}, not a regular file"))
}

/// Parses TOML text. The error names the file, line and column and what the parser expected,
/// but never quotes the file's text (which would leak the secret being written).
pub(crate) fn parse_toml(path: &Path, text: &str) -> Result<Table> {
    text.parse::<Table>().map_err(|e| {
        let offset = e.span().map_or(0, |span| span.start);
        let (line, column) = line_column(text, offset);
        let mut message = e.message().trim().to_owned();
        // the span of a duplicate key is the key (a name, never a value): say which one
        if message == "duplicate key"
            && let Some(key) = e.span().and_then(|span| text.get(span)).map(str::trim).filter(|k| !k.is_empty())
        {
            message = format!("duplicate key `{key}`");
        }
        Error::Parse { path: path.to_owned(), line, column, message }
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Reads a Kubernetes-style directory of secrets: every entry is a folder; inside it, each
/// regular file is a key whose value is the file's trimmed text. A folder with exactly one file
/// maps to that file's text, otherwise to a table. Entries are read in name order.
fn read_directory(dir: &Path) -> Result<Option<Table>> {
    let mut table = Table::new();
    let mut found_any = false;
    for entry in sorted_entries(dir)? {
        if !entry.is_dir() {
            return Err(Error::SecretsDirEntry { path: entry });
        }
        let mut files = Table::new();
        for file in sorted_entries(&entry)? {
            if !file.is_file() {
                continue; // sub-sub-folders are ignored, as in Streamlit
            }
            let text = read_text(&file)?.unwrap_or_default();
            files.insert(file_name(&file), Value::String(text.trim().to_owned()));
            found_any = true;
        }
        let value = if files.len() == 1 {
            files.into_iter().next().map_or_else(|| Value::Table(Table::new()), |(_, v)| v)
        } else {
            Value::Table(files)
        };
        table.insert(file_name(&entry), value);
    }
    Ok(found_any.then_some(table))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_err = |source| Error::Read { path: dir.to_owned(), source };
    let mut entries = fs::read_dir(dir)
        .map_err(read_err)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(read_err)?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, text.find('x').unwrap()), (2, 6));
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let table = parse_toml(Path::new("/s.toml"), "\u{feff}a = 1\n").unwrap();
        assert_eq!(table["a"].as_integer(), Some(1));
    }

    #[test]
    fn parse_error_never_quotes_the_file() {
        let text = "password = \"hunter2-very-secret\nother = 1\n";
        let err = parse_toml(Path::new("/s.toml"), text).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let Error::Parse { line, .. } = err else { panic!("{err:?}") };
        assert_eq!(line, 1);
    }
}
