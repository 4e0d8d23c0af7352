//! `ragsnap rebuild`.

use super::Ctx;
use crate::args::SelectArgs;
use crate::exit::ExitKind;
use crate::output::{self, print_json};
use anyhow::{Context, Result};
use ragsnap::config::SourceConfig;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Logs each stage as it starts and how long the previous one took (`-v`), and the progress
/// inside a stage (`-vv`).
struct StageLog {
    current: Mutex<Option<(String, Instant)>>,
}

impl StageLog {
    fn update(&self, stage: &str, done: u64, total: u64) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match cur.as_ref() {
            Some((s, _)) if s == stage => {
                tracing::debug!("stage {stage}: {done}/{total}");
            }
            _ => {
                if let Some((s, t)) = cur.take() {
                    tracing::info!("stage {s} done in {:.2}s", t.elapsed().as_secs_f64());
                }
                *cur = Some((stage.to_string(), Instant::now()));
            }
        }
    }

    fn finish(&self) {
        if let Some((s, t)) = self.current.lock().unwrap_or_else(|p| p.into_inner()).take() {
            tracing::info!("stage {s} done in {:.2}s", t.elapsed().as_secs_f64());
        }
    }
}

/// Build, gate and (when every gate passes) promote a snapshot.
#[allow(clippy::too_many_arguments)]
pub fn run(
    mut ctx: Ctx,
    source: Vec<PathBuf>,
    url_prefix: Option<String>,
    select: SelectArgs,
    allow_model_change: bool,
    force: bool,
    golden: Option<PathBuf>,
    metrics_file: Option<PathBuf>,
) -> Result<ExitKind> {
    let config = &mut ctx.config;
    select.apply(config);
    let sources: Vec<SourceConfig> =
        source.into_iter().map(|dir| SourceConfig { dir, url_prefix: url_prefix.clone(), name: None }).collect();
    if golden.is_some() {
        config.gates.golden = golden;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, cancel.clone()).context("installing signal handlers")?;
    }
    let started = Instant::now();
    // Every run writes metrics, success or not (a model that cannot be loaded included).
    let embedder = match ragsnap::open_embedder(&config.runtime) {
        Ok(e) => e,
        Err(e) => {
            if let Some(path) = &metrics_file {
                let _ = ragsnap::rebuild::write_metrics(path, Err(&e));
            }
            return Err(e.into());
        }
    };
    tracing::info!("model loaded in {:.2}s", started.elapsed().as_secs_f64());
    // A progress bar only for a person watching: never in cron logs or pipes.
    let bar = (!ctx.quiet && ctx.verbose == 0 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg:<8} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    });
    let stages = StageLog { current: Mutex::new(None) };
    let on_progress = |stage: &str, done: u64, total: u64| {
        stages.update(stage, done, total);
        if let Some(b) = &bar {
            b.set_message(stage.to_string());
            b.set_length(total);
            b.set_position(done);
        }
    };
    let opts = ragsnap::RebuildOptions {
        sources,
        allow_model_change,
        force,
        cancel: Some(&cancel),
        progress: Some(&on_progress),
        ..Default::default()
    };
    let result = ragsnap::rebuild_with(&ctx.store_path, config, &opts, embedder.as_ref());
    stages.finish();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let metrics = metrics_file.as_deref().map(|p| (p, ragsnap::rebuild::write_metrics(p, result.as_ref())));
    let report = result?;
    for (stage, secs) in &report.timings {
        tracing::info!("timing {stage}: {secs:.2}s");
    }
    let unchanged = report.outcome == ragsnap::Outcome::Unchanged;
    ctx.audit(
        "rebuild",
        Some(&report.snapshot_id),
        if report.succeeded() { "ok" } else { ExitKind::Rejected.outcome() },
        if unchanged {
            "unchanged: sources and settings match head; no new snapshot".to_string()
        } else if report.promoted {
            format!("promoted; {} documents, {} chunks", report.documents_indexed, report.chunks)
        } else {
            format!("rejected by gates: {}", report.rejected_because.join("; "))
        },
    );
    if let Some((path, written)) = metrics {
        written.with_context(|| format!("writing metrics to {}", path.display()))?;
    }
    if ctx.json {
        print_json(&report)?;
    }
    if !ctx.quiet && unchanged {
        eprintln!(
            "ragsnap: unchanged: sources and settings match head {}; no new snapshot (--force builds one)",
            report.snapshot_id
        );
    } else if !ctx.quiet {
        output::rebuild_summary(&report);
    }
    Ok(if report.succeeded() { ExitKind::Ok } else { ExitKind::Rejected })
}
