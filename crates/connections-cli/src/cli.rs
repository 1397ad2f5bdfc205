//! The command line: every subcommand, flag and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use connections::Param;
use connections::toml::Value;

/// Query, check and inspect the connections configured in `secrets.toml`.
#[derive(Debug, Parser)]
#[command(
    name = "connections",
    version,
    about,
    after_help = "Examples:\n  connections query pets_db \"select * from pets\"\n  connections check pets_db\n  connections secrets\n\nSecrets are read from ~/.streamlit/secrets.toml and ./.streamlit/secrets.toml (see --project)."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The project directory: its `.streamlit/` is read, and relative paths (SQLite files)
    /// resolve against it [default: the working directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) project: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); secret values are never logged
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,

    /// Errors only: no spinner, no row count, no warnings
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,

    /// Export the top-level string and number secrets to the environment first, as Streamlit does
    #[arg(long, global = true)]
    pub(crate) export_env: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a query and print or save its result
    #[command(after_help = "Examples:\n  connections query pets_db \"select * from pets\"\n  \
        connections query pets_db \"select * from pets where owner = :owner\" --param owner=Jerry\n  \
        connections query pets_db \"select * from pets\" --format parquet --output pets.parquet\n  \
        connections query pets_db \"select * from pets\" --format ndjson | jq .name")]
    Query(QueryArgs),

    /// Run a statement (DDL or DML) and print the number of rows it changed
    #[command(
        after_help = "Examples:\n  connections execute pets_db \"create table pets (name text, owner text)\"\n  \
        connections execute pets_db \"insert into pets values (:name, 'Jerry')\" --param name=Tom"
    )]
    Execute(ExecuteArgs),

    /// Open a connection, run its cheapest round trip, and show where its configuration came from
    #[command(after_help = "Example:\n  connections check pets_db")]
    Check(CheckArgs),

    /// List every registered connection type
    #[command(after_help = "Examples:\n  connections types\n  connections types --json")]
    Types(TypesArgs),

    /// Show the secrets files searched and found, and the key tree with values redacted
    #[command(after_help = "Examples:\n  connections secrets\n  connections secrets --json\n  \
        connections secrets --show connections.pets_db.url")]
    Secrets(SecretsArgs),

    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  connections completions bash > ~/.local/share/bash-completion/completions/connections\n  \
        connections completions zsh > ~/.zfunc/_connections"
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// What opens a connection: its name and the overrides.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The connection's name: `[connections.NAME]` in the secrets (or `env:VAR`)
    pub(crate) name: String,

    /// The connection type, over the one the name or the secrets give
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) type_name: Option<String>,

    /// A configuration key, laid over the secrets section (repeatable); VALUE is read as TOML
    /// when it parses (numbers, booleans, arrays), else as text
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub(crate) settings: Vec<(String, Value)>,
}

/// `connections query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// The query
    pub(crate) sql: String,

    /// A named parameter, `:KEY` in the SQL (repeatable); integers, floats and true/false are
    /// bound as such, 'quoted' values and everything else as text, `null` as NULL
    #[arg(short, long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub(crate) params: Vec<(String, Param)>,

    /// The output format
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,

    /// Write to FILE (atomically: a temporary file renamed into place) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Rows shown by the table format (0: all); the other formats write every row
    #[arg(long, default_value_t = 100, value_name = "ROWS")]
    pub(crate) limit: usize,
}

/// `connections execute`.
#[derive(Debug, Args)]
pub(crate) struct ExecuteArgs {
    #[command(flatten)]
    pub(crate) target: Target,

    /// The statement
    pub(crate) sql: String,

    /// A named parameter, `:KEY` in the SQL (repeatable); typed as for `query`
    #[arg(short, long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub(crate) params: Vec<(String, Param)>,
}

/// `connections check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) target: Target,
}

/// `connections types`.
#[derive(Debug, Args)]
pub(crate) struct TypesArgs {
    /// JSON, for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

/// `connections secrets`.
#[derive(Debug, Args)]
pub(crate) struct SecretsArgs {
    /// Print the value at this key path, on purpose (`connections.pets_db.url`)
    #[arg(long, value_name = "KEY.PATH")]
    pub(crate) show: Option<String>,

    /// JSON, for scripts
    #[arg(long)]
    pub(crate) json: bool,
}

/// The output formats of `query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table for people (the first --limit rows)
    Table,
    /// CSV with a header row
    Csv,
    /// One JSON array of objects
    Json,
    /// One JSON object per line
    Ndjson,
    /// The Arrow IPC stream format
    Arrow,
    /// Parquet
    Parquet,
}

fn split_pair(text: &str) -> Result<(&str, &str), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        _ => Err(format!("expected KEY=VALUE, found {text:?}")),
    }
}

/// `KEY=VALUE` as a query parameter.
pub(crate) fn parse_param(text: &str) -> Result<(String, Param), String> {
    let (key, value) = split_pair(text)?;
    let key = key.strip_prefix(':').unwrap_or(key);
    Ok((key.to_owned(), typed_param(value)))
}

fn typed_param(value: &str) -> Param {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') || quoted('"') {
        return Param::Str(value[1..value.len() - 1].to_owned());
    }
    match value {
        "null" | "NULL" => return Param::Null,
        "true" => return Param::Bool(true),
        "false" => return Param::Bool(false),
        _ => {}
    }
    if let Ok(i) = value.parse::<i64>() {
        return Param::I64(i);
    }
    let numeric = value.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if numeric && let Ok(x) = value.parse::<f64>() {
        return Param::F64(x);
    }
    Param::Str(value.to_owned())
}

/// `KEY=VALUE` as a configuration key.
pub(crate) fn parse_setting(text: &str) -> Result<(String, Value), String> {
    let (key, value) = split_pair(text)?;
    let parsed = format!("v = {value}").parse::<connections::toml::Table>().ok().and_then(|mut t| t.remove("v"));
    Ok((key.to_owned(), parsed.unwrap_or_else(|| Value::String(value.to_owned()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_typed() {
        let p = |s: &str| parse_param(s).map(|(_, v)| v);
        assert_eq!(p("a=42"), Ok(Param::I64(42)));
        assert_eq!(p("a=-1.5"), Ok(Param::F64(-1.5)));
        assert_eq!(p("a=true"), Ok(Param::Bool(true)));
        assert_eq!(p("a=null"), Ok(Param::Null));
        assert_eq!(p("a='01234'"), Ok(Param::Str("01234".into())));
        assert_eq!(p("a=inf"), Ok(Param::Str("inf".into())));
        assert_eq!(p("a=x=y"), Ok(Param::Str("x=y".into())));
        assert_eq!(parse_param(":owner=Jerry"), Ok(("owner".into(), Param::Str("Jerry".into()))));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("=1").is_err());
    }

    #[test]
    fn settings_read_toml_else_text() {
        assert_eq!(parse_setting("pool_size=3"), Ok(("pool_size".into(), Value::Integer(3))));
        assert_eq!(parse_setting("url=sqlite://x.db"), Ok(("url".into(), Value::String("sqlite://x.db".into()))));
        assert_eq!(parse_setting("flag=true"), Ok(("flag".into(), Value::Boolean(true))));
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
