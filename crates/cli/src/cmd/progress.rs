//! Progress of long writes and reads: a spinner with counts, drawn on stderr only when stderr
//! is a terminal (never in pipelines or tests).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A counter of events and bytes; hidden unless stderr is a terminal.
pub fn counter(verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let template = format!("{{spinner}} {verb} {{human_pos}} events, {{msg}} in {{elapsed}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Counts one more event; `total_bytes` is the payload bytes so far.
pub fn advance(bar: &ProgressBar, total_bytes: u64) {
    bar.inc(1);
    if !bar.is_hidden() {
        bar.set_message(indicatif::HumanBytes(total_bytes).to_string());
    }
}
