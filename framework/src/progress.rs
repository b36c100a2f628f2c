//! Progress bars (indicatif) for long loops: shown on an interactive terminal, hidden in CI, in
//! pipes and when `FAIRLAB_NO_PROGRESS` is set.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress bars should be drawn in this process.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var_os("FAIRLAB_NO_PROGRESS").is_none()
}

/// A bar of `len` steps with a message, or a hidden one when bars are disabled.
pub fn bar(len: u64, message: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} ({elapsed}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}
