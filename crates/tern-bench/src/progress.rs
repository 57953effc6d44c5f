//! Progress bars (indicatif), hidden with `--quiet`, `--json` and in workers.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` steps labelled `msg`, or a hidden one.
pub fn bar(enabled: bool, len: u64, msg: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
    ) {
        pb.set_style(style);
    }
    pb.set_message(msg);
    pb
}
