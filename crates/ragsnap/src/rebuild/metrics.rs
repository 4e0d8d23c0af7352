//! Prometheus text-format metrics of a rebuild, for the node_exporter textfile collector.
//!
//! Every run writes them, success or not ([`write_metrics`]): a failed run says
//! `ragsnap_rebuild_success 0` and `ragsnap_rebuild_promoted 0`, and keeps the last success's
//! time (`ragsnap_rebuild_last_success_timestamp_seconds`, read back from the previous file) so
//! an alert can fire on its age. A run succeeds when it promoted a snapshot or found the sources
//! unchanged; a build rejected by a gate, an error or an interruption is not a success. Every
//! family has `# HELP` and `# TYPE`.

use super::{Outcome, RebuildReport};
use crate::{Error, Result};
use ragsnap_store::time;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const LAST_SUCCESS: &str = "ragsnap_rebuild_last_success_timestamp_seconds";
const UNCHANGED_TOTAL: &str = "ragsnap_rebuild_unchanged_total";

struct Families(String);

impl Families {
    /// One family with its HELP and TYPE lines and its samples as `(labels, value)`.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
        let _ = writeln!(self.0, "# HELP ragsnap_{name} {help}\n# TYPE ragsnap_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "ragsnap_{name}{labels} {value}");
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help, &[(String::new(), value)]);
    }
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// A sample's value in an earlier metrics file.
fn previous_value(previous: &str, name: &str) -> Option<f64> {
    previous.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse::<f64>().ok()).flatten().filter(|v| v.is_finite() && *v >= 0.0)
    })
}

/// Metrics of one run (`Ok`: it finished, promoted, rejected or unchanged; `Err`: it failed),
/// carrying the last success time and the unchanged count over from `previous` (the metrics
/// file of the run before, if any), at time `now` (Unix seconds).
pub fn run_metrics(outcome: std::result::Result<&RebuildReport, &Error>, previous: Option<&str>, now: i64) -> String {
    let report = outcome.ok();
    let success = report.is_some_and(|r| r.outcome != Outcome::Rejected);
    let last_success = if success { Some(now as f64) } else { previous.and_then(|p| previous_value(p, LAST_SUCCESS)) };
    let unchanged_before = previous.and_then(|p| previous_value(p, UNCHANGED_TOTAL)).unwrap_or(0.0);
    let unchanged = report.is_some_and(|r| r.outcome == Outcome::Unchanged);
    let mut m = Families(String::new());
    m.gauge(
        "rebuild_success",
        "1 when the last rebuild promoted a snapshot or found nothing to change, else 0",
        flag(success),
    );
    m.gauge(
        "rebuild_promoted",
        "1 when the last rebuild was promoted to head, 0 when it was rejected, unchanged or failed",
        flag(report.is_some_and(|r| r.promoted)),
    );
    m.gauge("rebuild_unchanged", "1 when the last rebuild found sources and settings equal to head's", flag(unchanged));
    m.family(
        "rebuild_unchanged_total",
        "counter",
        "Rebuilds that wrote no snapshot because sources and settings matched head's",
        &[(String::new(), unchanged_before + flag(unchanged))],
    );
    m.gauge("rebuild_timestamp_seconds", "When the last rebuild finished", now as f64);
    if let Some(t) = last_success {
        m.gauge("rebuild_last_success_timestamp_seconds", "When a rebuild last succeeded", t);
    }
    if let Some(r) = report {
        report_metrics(&mut m, r);
    }
    m.0
}

/// Prometheus text-format metrics for a finished rebuild.
pub fn prometheus_metrics(report: &RebuildReport) -> String {
    run_metrics(Ok(report), None, time::unix_now())
}

/// Write the metrics of a run to `path` atomically, carrying over what the previous file at
/// `path` held. Called for every run, whatever its outcome.
pub fn write_metrics(path: &Path, outcome: std::result::Result<&RebuildReport, &Error>) -> Result<()> {
    let previous = std::fs::read_to_string(path).ok();
    let text = run_metrics(outcome, previous.as_deref(), time::unix_now());
    ragsnap_core::fsio::write_atomic(path, text.as_bytes()).map_err(|e| Error::io(path, e))
}

fn report_metrics(m: &mut Families, report: &RebuildReport) {
    let n = |v: usize| v as f64;
    m.gauge("rebuild_files_seen", "Files found in the sources", n(report.files_seen));
    m.gauge("rebuild_documents_indexed", "Documents that produced chunks", n(report.documents_indexed));
    m.gauge("rebuild_documents_failed", "Documents that failed and were quarantined", n(report.failed.len()));
    m.gauge(
        "rebuild_documents_skipped",
        "Entries skipped (unsupported, empty, symlink, FIFO, socket, device)",
        n(report.skipped.len()),
    );
    m.gauge("rebuild_files_excluded", "Files and folders left out by the source selection", n(report.files_excluded));
    m.gauge("rebuild_chunks", "Chunks in the snapshot", n(report.chunks));
    m.gauge("rebuild_documents_reused", "Documents whose chunks were copied from head", n(report.documents_reused));
    m.gauge("rebuild_documents_chunked", "Documents chunked in this run", n(report.documents_chunked));
    m.gauge("rebuild_cache_hits", "Vectors reused from the embedding cache", n(report.cache_hits));
    m.gauge("rebuild_cache_misses", "Vectors computed by the model", n(report.cache_misses));
    let cc = &report.cache_check;
    m.gauge(
        "rebuild_cache_rejected_rows",
        "Embedding cache rows that failed their checksum or value checks (embedded again)",
        n(cc.rejected_rows),
    );
    m.gauge("rebuild_cache_unchecked_rows", "Cache rows without a checksum (embedded again)", n(cc.unchecked_rows));
    m.gauge("rebuild_cache_sampled", "Cache hits embedded again to compare", n(cc.sampled));
    m.gauge(
        "rebuild_cache_quarantined",
        "1 when a damaged cache file was moved aside and an empty cache started",
        flag(cc.quarantined.is_some()),
    );
    m.gauge(
        "rebuild_cache_sample_mismatches",
        "Sampled cache hits that disagreed with the model",
        n(cc.sample_mismatches),
    );
    m.gauge(
        "rebuild_cache_untrusted",
        "1 when the sample disagreed too often and every chunk was embedded again",
        flag(cc.untrusted),
    );
    m.gauge("rebuild_recall", "Measured recall@k of the index", report.recall);
    // A run that built nothing (unchanged) says nothing about how an index was made.
    if report.outcome != super::Outcome::Unchanged {
        let u = &report.index_update;
        let modes = [super::IndexMode::Updated, super::IndexMode::Rebuilt];
        m.family(
            "rebuild_index_mode",
            "gauge",
            "1 for how the vector index was made: head's graph updated, or rebuilt from scratch",
            &modes.map(|md| (format!("{{mode=\"{}\"}}", md.as_str()), flag(u.mode == md))),
        );
        m.gauge("rebuild_index_points_inserted", "Points inserted into head's graph", n(u.points_inserted));
        m.gauge("rebuild_index_points_deleted", "Points of head's graph marked deleted", n(u.points_deleted));
        m.gauge("rebuild_index_deleted_share", "Deleted points as a share of the graph written", u.deleted_share);
    }
    m.gauge("rebuild_boilerplate_blocks_removed", "Boilerplate blocks dropped", n(report.boilerplate.blocks_removed));
    let d = &report.source_diff;
    let changes = [("added", d.added), ("changed", d.changed), ("removed", d.removed), ("unchanged", d.unchanged)];
    m.family(
        "rebuild_source_documents",
        "gauge",
        "Source documents compared with head",
        &changes.map(|(c, v)| (format!("{{change=\"{c}\"}}"), n(v))),
    );
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.skipped {
        *skipped.entry(f.kind.as_str()).or_default() += 1;
    }
    if !skipped.is_empty() {
        let samples: Vec<_> = skipped.iter().map(|(k, v)| (format!("{{reason=\"{k}\"}}"), n(*v))).collect();
        m.family("rebuild_skipped", "gauge", "Entries skipped, by reason", &samples);
    }
    let stages: Vec<_> = report.timings.iter().map(|(s, v)| (format!("{{stage=\"{s}\"}}"), *v)).collect();
    m.family("rebuild_stage_seconds", "gauge", "Seconds the last rebuild spent in each stage", &stages);
    if !report.gates.is_empty() {
        let per_gate = |f: &dyn Fn(&super::GateResult) -> f64| -> Vec<(String, f64)> {
            report.gates.iter().map(|g| (format!("{{gate=\"{}\"}}", g.name), f(g))).collect()
        };
        m.family("rebuild_gate_passed", "gauge", "1 when the gate passed", &per_gate(&|g| flag(g.passed)));
        m.family("rebuild_gate_value", "gauge", "The value the gate measured", &per_gate(&|g| g.value));
        m.family(
            "rebuild_gate_threshold",
            "gauge",
            "The threshold the gate compared it with",
            &per_gate(&|g| g.threshold),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families_have_help_and_type(text: &str) {
        let mut declared = std::collections::HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} has no TYPE line:\n{text}");
                assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP line");
            }
        }
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_time_and_clears_promoted() {
        let ok = RebuildReport {
            outcome: Outcome::Promoted,
            promoted: true,
            gates: vec![super::super::GateResult {
                name: "recall".into(),
                passed: true,
                value: 1.0,
                threshold: 0.98,
                detail: String::new(),
            }],
            timings: [("embed".to_string(), 1.5)].into(),
            ..Default::default()
        };
        let first = run_metrics(Ok(&ok), None, 1000);
        families_have_help_and_type(&first);
        assert!(first.contains("ragsnap_rebuild_promoted 1\n"));
        assert!(first.contains("ragsnap_rebuild_success 1\n"));
        assert!(first.contains("ragsnap_rebuild_index_mode{mode=\"rebuilt\"} 1\n"), "{first}");
        assert!(first.contains("ragsnap_rebuild_index_mode{mode=\"updated\"} 0\n"));
        assert!(first.contains("ragsnap_rebuild_last_success_timestamp_seconds 1000\n"));

        let err = Error::Invalid("boom".into());
        let failed = run_metrics(Err(&err), Some(&first), 2000);
        families_have_help_and_type(&failed);
        assert!(failed.contains("ragsnap_rebuild_promoted 0\n"), "{failed}");
        assert!(failed.contains("ragsnap_rebuild_success 0\n"));
        assert!(failed.contains("ragsnap_rebuild_timestamp_seconds 2000\n"));
        assert!(failed.contains("ragsnap_rebuild_last_success_timestamp_seconds 1000\n"), "{failed}");

        let rejected = RebuildReport { outcome: Outcome::Rejected, ..ok.clone() };
        let r = run_metrics(Ok(&rejected), Some(&failed), 3000);
        assert!(r.contains("ragsnap_rebuild_success 0\n"));
        assert!(r.contains("ragsnap_rebuild_last_success_timestamp_seconds 1000\n"));

        let unchanged = RebuildReport { outcome: Outcome::Unchanged, promoted: false, ..Default::default() };
        let u1 = run_metrics(Ok(&unchanged), Some(&r), 4000);
        let u2 = run_metrics(Ok(&unchanged), Some(&u1), 5000);
        families_have_help_and_type(&u2);
        assert!(u1.contains("ragsnap_rebuild_unchanged_total 1\n"), "{u1}");
        assert!(u2.contains("ragsnap_rebuild_unchanged_total 2\n"));
        assert!(u2.contains("ragsnap_rebuild_success 1\n"));
        assert!(u2.contains("ragsnap_rebuild_last_success_timestamp_seconds 5000\n"));
        // Without any earlier success there is no last-success sample at all, and a damaged
        // earlier file is not carried over.
        assert!(!run_metrics(Err(&err), None, 10).contains(LAST_SUCCESS));
        let damaged = format!("{LAST_SUCCESS} NaN\n{UNCHANGED_TOTAL} -3\n");
        let m = run_metrics(Err(&err), Some(&damaged), 10);
        assert!(!m.contains(LAST_SUCCESS) && m.contains(&format!("{UNCHANGED_TOTAL} 0\n")), "{m}");
    }
}
