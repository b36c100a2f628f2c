//! Ctrl-C handling: the first SIGINT (or SIGTERM, which `scancel`, a Slurm time limit or a sweep's
//! driver send) asks the run to stop at the next safe point (between batches and epochs), which
//! ends it as KILLED with everything logged so far; a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The error a run stops with after Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C or SIGTERM)")]
pub struct Interrupted;

/// Install the SIGINT/SIGTERM handler (once per process).
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to exit now)");
    })?;
    Ok(())
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once Ctrl-C was pressed.
pub fn check() -> Result<(), Interrupted> {
    if requested() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}
