//! `fairlab runs sync`: send the runs the offline spool holds (logged while their tracking server
//! was unavailable) to their server, each to the server it was logging to.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use fairlab_framework::tracking::rest::client::is_server_unavailable;
use fairlab_framework::tracking::spool::{default_spool_dir, SERVER_RUN_ID_TAG, SERVER_TAG};
use fairlab_framework::tracking::sync::{pending_runs, sync_run};
use fairlab_framework::tracking::{FileStore, RestStore, RunStatus};

/// Arguments of `fairlab runs sync`.
#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// The spool folder (default: `$FAIRLAB_SPOOL_DIR`, else `~/.local/share/fairlab/spool`).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Also send runs still RUNNING in the spool (their process died, or is still logging); they
    /// stay pending, so that a later sync sends the rest.
    #[arg(long)]
    pub include_running: bool,

    /// List what would be sent, and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Sync every pending run of the spool; an error when some could not be sent (they stay pending).
pub fn run(args: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = args.spool.clone().unwrap_or_else(default_spool_dir);
    if !dir.is_dir() {
        writeln!(out, "nothing to sync: there is no offline spool at {}", dir.display())?;
        return Ok(());
    }
    let spool = FileStore::open(&dir)?;
    let pending = pending_runs(&spool)?;
    if pending.is_empty() {
        writeln!(out, "nothing to sync: every run in {} is synced", dir.display())?;
        return Ok(());
    }
    let mut servers: HashMap<String, RestStore> = HashMap::new();
    let mut down: Vec<String> = Vec::new();
    let (mut synced, mut failed, mut skipped) = (0, 0, 0);
    for run in &pending {
        let id = &run.info.run_id;
        let name = &run.info.run_name;
        let Some(server_uri) = run.tags.get(SERVER_TAG) else {
            writeln!(
                out,
                "skipped run {id} ({name}): it does not say which server it belongs to ({SERVER_TAG})"
            )?;
            skipped += 1;
            continue;
        };
        if run.info.status == RunStatus::Running && !args.include_running {
            writeln!(
                out,
                "skipped run {id} ({name}): still RUNNING in the spool (its process is logging, or died; --include-running sends it anyway)"
            )?;
            skipped += 1;
            continue;
        }
        if args.dry_run {
            let target = run
                .tags
                .get(SERVER_RUN_ID_TAG)
                .map_or_else(|| "a new run".to_string(), |s| format!("run {s}"));
            writeln!(
                out,
                "would send run {id} ({name}, {}) to {target} on {server_uri}",
                run.info.status.as_str()
            )?;
            continue;
        }
        if down.contains(server_uri) {
            writeln!(out, "not sent: run {id} ({name}): {server_uri} is unavailable")?;
            failed += 1;
            continue;
        }
        let server = match servers.entry(server_uri.clone()) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(RestStore::open(server_uri)?),
        };
        match sync_run(&spool, run, server) {
            Ok(done) => {
                synced += 1;
                writeln!(
                    out,
                    "synced run {id} ({name}) to {server_uri}{}: {} params, {} tags, {} metric points, {} artifacts, {}{}",
                    if done.created {
                        format!(" (created there as {})", done.server_run_id)
                    } else {
                        String::new()
                    },
                    done.params,
                    done.tags,
                    done.metric_points,
                    done.artifacts,
                    done.status.as_str(),
                    if done.status.is_terminal() { "" } else { " (stays pending)" }
                )?;
            }
            Err(e) => {
                failed += 1;
                if is_server_unavailable(&e) {
                    down.push(server_uri.clone());
                }
                writeln!(out, "not sent: run {id} ({name}): {e:#}")?;
            }
        }
    }
    if args.dry_run {
        return Ok(());
    }
    writeln!(
        out,
        "{synced} run(s) synced, {skipped} skipped, {failed} not sent (spool: {})",
        dir.display()
    )?;
    if failed > 0 {
        anyhow::bail!(
            "{failed} run(s) could not be sent and stay pending: run `fairlab runs sync` again once the server answers"
        );
    }
    Ok(())
}
