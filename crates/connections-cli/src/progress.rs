//! The spinner shown on a terminal while a query runs, and the summary line on stderr.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Elapsed time and rows for stderr: a spinner on a terminal (never on a pipe or with `-q`),
/// and the closing summary unless quiet.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    quiet: bool,
}

impl Progress {
    /// Starts timing; shows a spinner when stderr is a terminal and not `quiet`.
    pub(crate) fn start(quiet: bool, what: &str) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, started: Instant::now(), quiet }
    }

    /// Shows the rows received so far.
    pub(crate) fn rows(&self, rows: u64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{rows} rows"));
        }
    }

    /// The time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Removes the spinner and, unless quiet, prints `summary` and the elapsed time on stderr.
    pub(crate) fn finish(self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{summary} in {}", format_duration(self.started.elapsed()));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `1.234 s`, `12.3 ms`, `456 µs`.
pub(crate) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}
