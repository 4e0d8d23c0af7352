//! Stage 7 of the rebuild, publish: what the manifest says about the build. The writing itself
//! is the snapshot format's ([`crate::snapshot::write::SnapshotWriter`]); this stage turns the
//! earlier stages' values into its [`Description`]. A value computed at build time that readers
//! need (a calibration, a new parameter) is added here and in the manifest.

use crate::snapshot::write::Description;
use ragsnap_chunk::ChunkConfig;
use ragsnap_core::{Canary, EmbeddingFingerprint};
use ragsnap_index::{Index, TuneReport};
use ragsnap_store::{Calibration, ChunkerInfo, IndexInfo, RefusalCalibration};

/// Where the build came from and what it measured.
pub(crate) struct BuildFacts<'a> {
    pub parent_id: Option<String>,
    pub source_digest: String,
    pub build_key: String,
    pub chunk_config: &'a ChunkConfig,
    pub fingerprint: EmbeddingFingerprint,
    pub canaries: Vec<Canary>,
    pub index: &'a Index,
    pub tuned: &'a TuneReport,
    /// The floors measured on this snapshot's own probes ([`crate::calibrate`]).
    pub refusal: Option<RefusalCalibration>,
}

/// The manifest's description of a build.
pub(crate) fn description(f: BuildFacts<'_>) -> Description {
    let (c, tuned) = (f.chunk_config, f.tuned);
    Description {
        parent_id: f.parent_id,
        source_digest: f.source_digest,
        build_key: f.build_key,
        chunker: ChunkerInfo {
            version: ragsnap_chunk::CHUNKER_VERSION,
            target_tokens: c.target_tokens,
            max_tokens: c.max_tokens,
            min_tokens: c.min_tokens,
        },
        fingerprint: f.fingerprint,
        canaries: f.canaries,
        index: IndexInfo {
            kind: f.index.kind(),
            m: tuned.params.map(|p| p.m).unwrap_or(0),
            ef_construction: tuned.params.map(|p| p.ef_construction).unwrap_or(0),
            ef_search: tuned.ef_search,
            recall: tuned.recall,
            target_recall: tuned.target_recall,
            sample: tuned.sample,
            k: tuned.k,
        },
        calibration: Calibration { top1_quantiles: tuned.top1_quantiles.clone(), refusal: f.refusal },
    }
}
