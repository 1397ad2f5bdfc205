//! How a failure reaches the user: one message, its causes, a hint where one exists.

use std::process::ExitCode;

/// Prints `error` on stderr (message, cause chain, hint) and gives exit code 1. A broken pipe
/// on stdout (`connections query ... | head`) is no failure: nothing is printed, exit code 0.
pub(crate) fn failure(error: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(error) {
        return ExitCode::SUCCESS;
    }
    eprint!("{}", render(error));
    ExitCode::FAILURE
}

/// The text of a failure: `error: ...`, one `caused by: ...` per distinct cause, and a hint.
pub(crate) fn render(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    let mut hint = None;
    for (i, cause) in error.chain().enumerate() {
        let message = cause.to_string();
        // a transparent wrapper repeats its cause's text, some drivers end theirs with it: once
        if !message.is_empty() && !previous.ends_with(&message) {
            let (first, rest) = message.split_once("\nhint: ").map_or((message.as_str(), None), |(m, h)| (m, Some(h)));
            if i == 0 {
                text.push_str("error: ");
                text.push_str(first);
                text.push('\n');
            } else {
                text.push_str("  caused by: ");
                text.push_str(first);
                text.push('\n');
            }
            hint = hint.or(rest.map(str::to_owned));
        }
        if hint.is_none()
            && let Some(e) = cause.downcast_ref::<connections::Error>()
        {
            hint = hint_for(e);
        }
        previous = message;
    }
    if let Some(hint) = hint {
        text.push_str("hint: ");
        text.push_str(&hint);
        text.push('\n');
    }
    text
}

fn hint_for(error: &connections::Error) -> Option<String> {
    use connections::Error as E;
    Some(match error.innermost() {
        E::SecretsNotFound { .. } => {
            "write a [connections.<name>] section in .streamlit/secrets.toml below the project \
             directory (the working directory, or --project DIR)"
                .to_owned()
        }
        E::NoType { name } => no_type_hint(name),
        E::UnknownType { .. } | E::PythonTypePath { .. } => "`connections types` lists the registered types".to_owned(),
        E::Parse { .. } | E::InvalidConfig { .. } => {
            "fix the file; `connections secrets` reads it again and shows what it holds".to_owned()
        }
        E::MissingSecret { .. } => "`connections secrets` shows every key".to_owned(),
        _ => return None,
    })
}

/// For a connection without a type: either the name is not configured at all (list the ones
/// that are), or its section needs a `type`.
fn no_type_hint(name: &str) -> String {
    let secrets = match connections::secrets() {
        Ok(secrets) => secrets,
        Err(error) => {
            return format!(
                "no secrets were read ({error}); write a [connections.{name}] section in .streamlit/secrets.toml \
                 below the project directory (the working directory, or --project DIR)"
            );
        }
    };
    let configured: Vec<String> = secrets
        .as_table()
        .get("connections")
        .and_then(|c| c.as_table())
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    if configured.iter().any(|c| c == name) {
        format!(
            "pass --type (`--type sql`; `connections types` lists them) or add `type = \"sql\"` to [connections.{name}]"
        )
    } else if configured.is_empty() {
        format!(
            "the secrets configure no connection; add a [connections.{name}] section (`connections secrets` shows the files read)"
        )
    } else {
        let candidates: Vec<&str> = configured.iter().map(String::as_str).collect();
        let closest = connections::closest_name(name, &candidates);
        let mut hint =
            format!("no [connections.{name}] in the secrets; configured connections: {}", configured.join(", "));
        if let Some(closest) = closest {
            hint = format!("{hint} (did you mean {closest:?}?)");
        }
        hint
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe")
    })
}
