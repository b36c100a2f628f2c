//! `fairlab`: run, compare and track debiasing methods on medical foundation models.
//!
//! Exit codes: 0 success, 1 a run failed (recorded FAILED in the tracking store), 2 bad usage or
//! configuration (nothing was run).

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fairlab: fairness research on medical foundation models.
#[derive(Parser)]
#[command(name = "fairlab", version, about, long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug); `RUST_LOG` takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment file (one with a `sweep:` section runs the sweep).
    Run(commands::run::RunArgs),
    /// Follow, resume and report sweeps.
    #[command(subcommand)]
    Sweep(commands::sweep::SweepCommand),
    /// List the registered plugins per kind.
    Plugins,
    /// Read runs from the tracking store.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Compute the fairness-metric contract on a predictions CSV.
    Metrics(commands::metrics::MetricsArgs),
    /// Write a backbone's image (and text) embeddings to a safetensors file.
    Embed(commands::embed::EmbedArgs),
    /// Benchmarks (JSON lines; scripts/bench-*.sh set them beside the Python references).
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

#[derive(Subcommand)]
enum RunsCommand {
    /// List runs.
    List(commands::runs::RunsListArgs),
    /// Show one run.
    Show(commands::runs::RunsShowArgs),
    /// Send the runs logged to the offline spool (while their server was unavailable) to it.
    Sync(commands::sync::SyncArgs),
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// mimalloc keeps freed memory for reuse instead of handing it back to the kernel and faulting it in
/// again, which the metric engine's large, short-lived columns otherwise pay for.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let registry = commands::registry();
    let mut stdout = std::io::stdout().lock();
    let result = match &cli.command {
        Command::Run(args) => return commands::run::run(args, &registry),
        Command::Sweep(command) => return commands::sweep::command(command, &registry),
        Command::Plugins => commands::plugins::list(&registry, &mut stdout),
        Command::Runs(RunsCommand::List(args)) => {
            commands::tracker().and_then(|t| commands::runs::list(t.as_ref(), args, &mut stdout))
        }
        Command::Runs(RunsCommand::Show(args)) => {
            commands::tracker().and_then(|t| commands::runs::show(t.as_ref(), args, &mut stdout))
        }
        Command::Runs(RunsCommand::Sync(args)) => commands::sync::run(args, &mut stdout),
        Command::Metrics(args) => commands::metrics::run(args, &registry, &mut stdout),
        Command::Embed(args) => commands::embed::run(args, &registry, &mut stdout),
        Command::Bench(command) => commands::bench::run(command, &mut stdout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            commands::exit_code(&e)
        }
    }
}
