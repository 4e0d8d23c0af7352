//! `ragsnap`: build, query, verify and roll back RAG index snapshots.
//!
//! `main` parses the flags ([`args`]), sets up logging ([`logging`]) and calls [`run`], which
//! hands each command to its function in [`commands`]. Printing lives in [`output`], exit codes
//! in [`exit`]. Everything a command computes comes from the `ragsnap` library.
//!
//! Exit codes: 0 ok · 1 error · 2 usage (also: `--store` is not a ragsnap store) · 3 refused (no
//! confident match, embedding mismatch or drift, a refused rollback or promotion) · 4 verification
//! failed / corrupted snapshot / damaged catalog (run `ragsnap repair`) · 5 store locked ·
//! 6 rebuild rejected by a gate (kept as a rejected snapshot; head unchanged) · 130 interrupted.
//! A closed stdout (`| head`) ends a command quietly with 0.

mod args;
mod commands;
mod exit;
mod logging;
mod output;

use args::{Cli, Command};
use clap::Parser;
use exit::ExitKind;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_exit(e),
    };
    logging::init(cli.quiet, cli.verbose);
    if let Some(a) = &cli.actor {
        ragsnap::store::audit::set_actor(a);
    }
    let json = cli.json;
    let writer = cli.command.writer_name();
    let store = cli.store.clone();
    let config = cli.config.clone();
    match run(cli) {
        Ok(kind) => ExitCode::from(kind.code()),
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let kind = ExitKind::of(&e);
            let message = format!("{e:#}");
            if let Some(name) = writer {
                commands::audit_failure(store.as_deref(), config.as_deref(), name, kind, &message);
            }
            eprintln!("ragsnap: error: {message}");
            if json {
                output::print_json_error(kind, &message);
            }
            ExitCode::from(kind.code())
        }
    }
}

/// A flag clap refused: as clap prints it (exit 2), or as a JSON error with `--json`.
fn usage_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if wants_json && !informational {
        let rendered = e.render().to_string();
        let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        eprintln!("ragsnap: error: {message}");
        output::print_json_error(ExitKind::Usage, &message);
        return ExitCode::from(ExitKind::Usage.code());
    }
    // clap prints help and version on stdout; a closed pipe there is not an error.
    let _ = e.print();
    ExitCode::from(if informational { 0 } else { ExitKind::Usage.code() })
}

/// Run one parsed command line.
fn run(cli: Cli) -> anyhow::Result<ExitKind> {
    let ctx = commands::Ctx::new(&cli)?;
    match cli.command {
        Command::Rebuild { source, url_prefix, select, allow_model_change, force, golden, metrics_file } => {
            commands::rebuild::run(ctx, source, url_prefix, select, allow_model_change, force, golden, metrics_file)
        }
        Command::Query { text, k, floor, floor_percentile, ef, mode, lexical_floor, rrf_k, snapshot } => {
            let flags = commands::query::QueryFlags { k, floor, floor_percentile, ef, mode, lexical_floor, rrf_k };
            commands::query::run(&ctx, &text, &flags, snapshot.as_deref())
        }
        Command::Snapshots => commands::inspect::snapshots(&ctx),
        Command::Show { id } => commands::inspect::show(&ctx, id.as_deref()),
        Command::Diff { a, b } => commands::inspect::diff(&ctx, &a, b.as_deref()),
        Command::History { last } => commands::inspect::history(&ctx, last),
        Command::Rollback { to, steps, reason, allow_model_change } => {
            commands::head::rollback(&ctx, to.as_deref(), steps, &reason, allow_model_change)
        }
        Command::Promote { id, force, allow_model_change, reason } => {
            commands::head::promote(&ctx, &id, force, allow_model_change, &reason)
        }
        Command::Pin { id, reason } => commands::head::pin(&ctx, &id, &reason),
        Command::Unpin { id } => commands::head::unpin(&ctx, &id),
        Command::Verify { id, all } => commands::maintain::verify(&ctx, id.as_deref(), all),
        Command::Gc { keep, older_than, keep_rejected_for, dry_run } => {
            commands::maintain::gc(&ctx, keep, older_than, keep_rejected_for, dry_run)
        }
        Command::Repair { dry_run } => commands::maintain::repair(&ctx, dry_run),
        Command::Cache { action } => commands::maintain::cache(&ctx, action),
        Command::Chunk { paths, source, url_prefix, select, markdown, model_tokens: _, stats } => {
            commands::chunk::run(ctx, &paths, source, url_prefix, select, markdown, stats)
        }
        Command::Serve(args) => Ok(ExitKind::from_code(ragsnap_serve::serve_command(
            &args,
            &ctx.store_path,
            &ctx.config.runtime,
            &ctx.config.query,
        ))),
        Command::Publish(args) => {
            Ok(ExitKind::from_code(ragsnap_serve::publish_command(&args, &ctx.store_path, ctx.json)))
        }
        Command::Pull(args) => Ok(ExitKind::from_code(ragsnap_serve::pull_command(&args, &ctx.store_path, ctx.json))),
        Command::Models { action } => commands::models::run(&ctx, action),
        Command::Completions { shell } => commands::completions(shell),
    }
}
