//! What the service counts, and its Prometheus text exposition.
//!
//! Counters are kept per snapshot, because "which snapshot answered badly" is the question an
//! operator asks after a promotion: requests, answered, refused (the apology rate), shed, timed
//! out and failed. Latency is a histogram per retrieval mode. The top-1 cosine of every dense or
//! hybrid query goes into a histogram and into a window of recent scores, compared with the
//! calibration quantiles the snapshot's manifest recorded at build time (the drift gauge).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Upper bounds of the top-1 cosine buckets.
pub const SCORE_BUCKETS: [f64; 14] = [0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0];
/// Recent top-1 scores kept per snapshot for the drift gauge.
pub const DRIFT_WINDOW: usize = 512;
/// Fewest recent scores before the drift gauge is reported.
pub const DRIFT_MIN_SAMPLES: usize = 20;

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Hits above the floor.
    Answered,
    /// No confident match: an answer with no hits.
    Refused,
    /// Turned away at admission (503).
    Shed,
    /// Deadline passed (504).
    TimedOut,
    /// Any other error (bad request, model mismatch, internal).
    Failed,
}

/// A counter's name, help text and how to read it.
type Series = (&'static str, &'static str, fn(&Counters) -> u64);

#[derive(Default)]
struct Counters {
    requests: u64,
    answered: u64,
    refused: u64,
    shed: u64,
    timed_out: u64,
    failed: u64,
    scores: Histogram,
    recent: VecDeque<f32>,
    calibration: Vec<f32>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.buckets.len() != bounds.len() {
            self.buckets = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in bounds.iter().enumerate() {
            let n = self.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The service's metrics. Cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    snapshots: BTreeMap<String, Counters>,
    latency: BTreeMap<String, Histogram>,
    refresh_failures: u64,
    switches: u64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Record the calibration quantiles of a snapshot the service opened.
    pub fn calibration(&self, id: &str, calibration: &[f32]) {
        self.with(|m| m.snapshots.entry(id.to_string()).or_default().calibration = calibration.to_vec());
    }

    /// Head was opened or switched.
    pub fn snapshot_switched(&self) {
        self.with(|m| m.switches += 1);
    }

    /// A head move the service could not follow.
    pub fn refresh_failed(&self) {
        self.with(|m| m.refresh_failures += 1);
    }

    /// Count one request's outcome against `snapshot` (the one serving when it arrived).
    pub fn record(&self, snapshot: &str, outcome: Outcome) {
        self.with(|m| {
            let c = m.snapshots.entry(snapshot.to_string()).or_default();
            c.requests += 1;
            match outcome {
                Outcome::Answered => c.answered += 1,
                Outcome::Refused => c.refused += 1,
                Outcome::Shed => c.shed += 1,
                Outcome::TimedOut => c.timed_out += 1,
                Outcome::Failed => c.failed += 1,
            }
        });
    }

    /// Latency of an answered or refused query, by the mode that answered.
    pub fn latency(&self, mode: &str, seconds: f64) {
        self.with(|m| m.latency.entry(mode.to_string()).or_default().observe(&LATENCY_BUCKETS, seconds));
    }

    /// The best cosine of a dense or hybrid query.
    pub fn top1(&self, snapshot: &str, score: f32) {
        self.with(|m| {
            let c = m.snapshots.entry(snapshot.to_string()).or_default();
            c.scores.observe(&SCORE_BUCKETS, f64::from(score));
            if c.recent.len() == DRIFT_WINDOW {
                c.recent.pop_front();
            }
            c.recent.push_back(score);
        });
    }

    /// Requests counted so far for `snapshot` with `outcome` (for tests and the benchmark).
    pub fn count(&self, snapshot: &str, outcome: Outcome) -> u64 {
        self.with(|m| {
            m.snapshots.get(snapshot).map_or(0, |c| match outcome {
                Outcome::Answered => c.answered,
                Outcome::Refused => c.refused,
                Outcome::Shed => c.shed,
                Outcome::TimedOut => c.timed_out,
                Outcome::Failed => c.failed,
            })
        })
    }

    /// Prometheus text format (version 0.0.4).
    pub fn render(&self, serving: Option<&str>, ready: bool, in_flight: usize, queued: usize) -> String {
        self.with(|m| {
            let mut out = String::new();
            let series: [Series; 6] = [
                ("ragsnap_serve_requests_total", "Query requests, by the snapshot serving when they arrived.", |c| c.requests),
                ("ragsnap_serve_answered_total", "Queries answered with at least one hit.", |c| c.answered),
                ("ragsnap_serve_refused_total", "Queries answered with no hit (no confident match).", |c| c.refused),
                ("ragsnap_serve_shed_total", "Requests turned away with 503 because every slot and queue place was taken.", |c| c.shed),
                ("ragsnap_serve_timed_out_total", "Requests that passed their deadline (504).", |c| c.timed_out),
                ("ragsnap_serve_failed_total", "Requests that ended in any other error.", |c| c.failed),
            ];
            for (name, help, get) in series {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (id, c) in &m.snapshots {
                    let _ = writeln!(out, "{name}{{snapshot=\"{}\"}} {}", escape(id), get(c));
                }
            }
            let name = "ragsnap_serve_query_duration_seconds";
            let _ = writeln!(out, "# HELP {name} Time from arrival to answer, by retrieval mode.\n# TYPE {name} histogram");
            for (mode, h) in &m.latency {
                h.write(&mut out, name, &format!("mode=\"{}\"", escape(mode)), &LATENCY_BUCKETS);
            }
            let name = "ragsnap_serve_top1_score";
            let _ = writeln!(out, "# HELP {name} Best cosine of each dense or hybrid query.\n# TYPE {name} histogram");
            for (id, c) in &m.snapshots {
                if c.scores.count > 0 {
                    h_write(&mut out, &c.scores, name, id);
                }
            }
            let name = "ragsnap_serve_top1_drift";
            let _ = writeln!(
                out,
                "# HELP {name} Largest gap between the recent top-1 score distribution and the snapshot's calibration quantiles (0 = same, 1 = disjoint).\n# TYPE {name} gauge"
            );
            for (id, c) in &m.snapshots {
                if let Some(d) = drift(&c.recent, &c.calibration) {
                    let _ = writeln!(out, "{name}{{snapshot=\"{}\"}} {d:.4}", escape(id));
                }
            }
            let _ = writeln!(out, "# HELP ragsnap_serve_ready 1 when the service answers queries.\n# TYPE ragsnap_serve_ready gauge");
            let _ = writeln!(out, "ragsnap_serve_ready {}", u8::from(ready));
            if let Some(id) = serving {
                let _ = writeln!(
                    out,
                    "# HELP ragsnap_serve_snapshot_info The snapshot answering queries.\n# TYPE ragsnap_serve_snapshot_info gauge"
                );
                let _ = writeln!(out, "ragsnap_serve_snapshot_info{{snapshot=\"{}\"}} 1", escape(id));
            }
            let _ = writeln!(out, "# HELP ragsnap_serve_in_flight Queries running now.\n# TYPE ragsnap_serve_in_flight gauge");
            let _ = writeln!(out, "ragsnap_serve_in_flight {in_flight}");
            let _ = writeln!(out, "# HELP ragsnap_serve_queued Requests admitted and waiting for a slot.\n# TYPE ragsnap_serve_queued gauge");
            let _ = writeln!(out, "ragsnap_serve_queued {queued}");
            let _ = writeln!(out, "# HELP ragsnap_serve_snapshot_switches_total Snapshots opened (start and head moves).\n# TYPE ragsnap_serve_snapshot_switches_total counter");
            let _ = writeln!(out, "ragsnap_serve_snapshot_switches_total {}", m.switches);
            let _ = writeln!(out, "# HELP ragsnap_serve_refresh_failures_total Head moves the service could not follow, and snapshots found changed on disk.\n# TYPE ragsnap_serve_refresh_failures_total counter");
            let _ = writeln!(out, "ragsnap_serve_refresh_failures_total {}", m.refresh_failures);
            out
        })
    }
}

fn h_write(out: &mut String, h: &Histogram, name: &str, id: &str) {
    h.write(out, name, &format!("snapshot=\"{}\"", escape(id)), &SCORE_BUCKETS);
}

/// Label value escaping of the text format.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Kolmogorov–Smirnov distance between the recent scores and the distribution the calibration
/// quantiles describe (quantile `i` of `n` sits at `i / (n - 1)`). `None` before
/// [`DRIFT_MIN_SAMPLES`] scores or without calibration.
pub fn drift(recent: &VecDeque<f32>, quantiles: &[f32]) -> Option<f64> {
    if recent.len() < DRIFT_MIN_SAMPLES || quantiles.len() < 2 {
        return None;
    }
    let n = recent.len() as f64;
    let last = (quantiles.len() - 1) as f64;
    let mut worst = 0.0f64;
    for (i, q) in quantiles.iter().enumerate() {
        let below = recent.iter().filter(|s| **s <= *q).count() as f64 / n;
        worst = worst.max((below - i as f64 / last).abs());
    }
    Some(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_small_for_the_calibrated_distribution_and_large_for_a_shifted_one() {
        let q: Vec<f32> = (0..=20).map(|i| 0.3 + 0.02 * i as f32).collect();
        let same: VecDeque<f32> = (0..200).map(|i| 0.3 + 0.4 * (i as f32 + 0.5) / 200.0).collect();
        let low: VecDeque<f32> = (0..200).map(|i| 0.1 + 0.1 * i as f32 / 200.0).collect();
        assert!(drift(&same, &q).unwrap() < 0.06, "{:?}", drift(&same, &q));
        assert!(drift(&low, &q).unwrap() > 0.9, "{:?}", drift(&low, &q));
        assert_eq!(drift(&VecDeque::from(vec![0.5; 3]), &q), None);
    }

    #[test]
    fn histograms_are_cumulative_and_render_per_snapshot() {
        let m = Metrics::default();
        m.record("s1", Outcome::Answered);
        m.record("s1", Outcome::Refused);
        m.latency("dense", 0.02);
        m.top1("s1", 0.62);
        let text = m.render(Some("s1"), true, 0, 0);
        assert!(text.contains("ragsnap_serve_requests_total{snapshot=\"s1\"} 2"), "{text}");
        assert!(text.contains("ragsnap_serve_refused_total{snapshot=\"s1\"} 1"), "{text}");
        assert!(text.contains("ragsnap_serve_query_duration_seconds_bucket{mode=\"dense\",le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("ragsnap_serve_query_duration_seconds_bucket{mode=\"dense\",le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("ragsnap_serve_top1_score_bucket{snapshot=\"s1\",le=\"0.65\"} 1"), "{text}");
        assert!(text.contains("ragsnap_serve_top1_score_bucket{snapshot=\"s1\",le=\"0.6\"} 0"), "{text}");
    }
}
