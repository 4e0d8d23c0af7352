//! The refusal calibration a rebuild records in `MANIFEST.json` (`calibration.refusal`): the
//! score distributions of in-corpus and out-of-corpus probe queries and the floors chosen from
//! them. Optional: a snapshot written before it existed has none, and queries on it keep the
//! model's default floors. See `docs/format.md`.

use serde::{Deserialize, Serialize};

/// Version of the probe sets and the selection rule; a change to either bumps it.
pub const REFUSAL_CALIBRATION_VERSION: u32 = 1;

/// What one probe set scored against the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeScores {
    /// Probes in the set.
    pub probes: u32,
    /// 21 quantiles (0%, 5%, …, 100%) of each probe's best cosine over the snapshot, ascending.
    pub top1_cosine: Vec<f32>,
    /// 21 quantiles of each probe's best lexical coverage (0 when BM25 found nothing), ascending.
    pub top1_coverage: Vec<f32>,
}

/// The floors a rebuild chose for its snapshot, and the measurements behind them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RefusalCalibration {
    /// [`REFUSAL_CALIBRATION_VERSION`] of the writer.
    pub version: u32,
    /// Share of in-corpus probes the dense floor must keep (e.g. 0.95).
    pub keep_share: f32,
    /// Default cosine floor of the snapshot.
    pub dense_floor: f32,
    /// Cosine a hit needs when the query names an identifier the hit does not hold.
    pub identifier_floor: f32,
    /// Default lexical coverage floor.
    pub lexical_floor: f32,
    /// Pseudo-questions made from the snapshot's own chunks (section titles, first sentences).
    pub in_corpus: ProbeScores,
    /// Shipped generic questions no documentation answers.
    pub off_topic: ProbeScores,
    /// Generated identifiers checked to be absent from the snapshot's lexical index.
    pub absent_identifiers: ProbeScores,
}

impl RefusalCalibration {
    /// Every number finite and in range, every quantile list empty or 21 ascending values.
    pub fn check(&self) -> std::result::Result<(), String> {
        for (name, v, lo, hi) in [
            ("keep_share", self.keep_share, 0.0, 1.0),
            ("dense_floor", self.dense_floor, -1.0, 1.0),
            ("identifier_floor", self.identifier_floor, -1.0, 1.0),
            ("lexical_floor", self.lexical_floor, 0.0, 1.0),
        ] {
            if !v.is_finite() || v < lo || v > hi {
                return Err(format!("calibration.refusal.{name} is {v}, not in [{lo}, {hi}]"));
            }
        }
        for (set, p) in [
            ("in_corpus", &self.in_corpus),
            ("off_topic", &self.off_topic),
            ("absent_identifiers", &self.absent_identifiers),
        ] {
            for (what, q) in [("top1_cosine", &p.top1_cosine), ("top1_coverage", &p.top1_coverage)] {
                let ok = (q.is_empty() || q.len() == 21)
                    && q.iter().all(|x| x.is_finite() && (-1.0..=1.0).contains(x))
                    && q.windows(2).all(|w| w[0] <= w[1]);
                if !ok {
                    return Err(format!("calibration.refusal.{set}.{what} is not 21 ascending values in [-1, 1]"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> RefusalCalibration {
        let q: Vec<f32> = (0..=20).map(|i| i as f32 / 20.0).collect();
        let p = ProbeScores { probes: 10, top1_cosine: q.clone(), top1_coverage: q };
        RefusalCalibration {
            version: REFUSAL_CALIBRATION_VERSION,
            keep_share: 0.95,
            dense_floor: 0.4,
            identifier_floor: 0.7,
            lexical_floor: 0.7,
            in_corpus: p.clone(),
            off_topic: p.clone(),
            absent_identifiers: ProbeScores::default(),
        }
    }

    #[test]
    fn check_refuses_numbers_out_of_range_and_bad_quantiles() {
        assert!(good().check().is_ok());
        let mut c = good();
        c.dense_floor = f32::NAN;
        assert!(c.check().unwrap_err().contains("dense_floor"));
        let mut c = good();
        c.lexical_floor = 1.5;
        assert!(c.check().unwrap_err().contains("lexical_floor"));
        let mut c = good();
        c.in_corpus.top1_cosine.swap(0, 20);
        assert!(c.check().unwrap_err().contains("in_corpus.top1_cosine"));
        let mut c = good();
        c.off_topic.top1_coverage.pop();
        assert!(c.check().unwrap_err().contains("off_topic.top1_coverage"));
        // Round trip through JSON, and an old manifest's calibration without the field.
        let json = serde_json::to_string(&good()).unwrap();
        assert_eq!(serde_json::from_str::<RefusalCalibration>(&json).unwrap(), good());
        let old: crate::Calibration = serde_json::from_str(r#"{"top1_quantiles": [0.5]}"#).unwrap();
        assert!(old.refusal.is_none());
        assert!(!serde_json::to_string(&old).unwrap().contains("refusal"));
    }
}
