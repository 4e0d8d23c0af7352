use crate::{dot, IndexError, Result, VectorSet};
use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{Distance, Hnsw};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// HNSW distance for L2-normalised vectors: `max(0, 1 - dot)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

/// Graph construction parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// Links per node per layer (`M`).
    pub m: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
}

/// An HNSW graph over a vector set, rows numbered from 0.
pub struct HnswIndex {
    graph: Hnsw<'static, f32, DotDistance>,
    params: HnswParams,
    len: usize,
}

const MAX_LAYERS: usize = 16;

impl HnswIndex {
    /// Build over every vector of `set`, inserting in parallel on the rayon pool.
    pub fn build(set: &VectorSet, params: HnswParams) -> Result<Self> {
        if params.m == 0 || params.m > 256 {
            return Err(IndexError::Graph(format!("M must be 1..=256, got {}", params.m)));
        }
        let graph = Hnsw::new(params.m, set.len().max(1), MAX_LAYERS, params.ef_construction, DotDistance);
        let rows: Vec<(&[f32], usize)> = (0..set.len()).map(|i| (set.get(i), i)).collect();
        graph.parallel_insert_slice(&rows);
        let mut graph = graph;
        graph.set_searching_mode(true);
        Ok(HnswIndex { graph, params, len: set.len() })
    }

    /// Construction parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of vectors in the graph.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Top-`k` rows as `(row, score)` with score = dot product, best first.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        if self.len == 0 || k == 0 {
            return Vec::new();
        }
        let mut hits: Vec<(u32, f32)> =
            self.graph.search(query, k, ef.max(k)).into_iter().map(|n| (n.d_id as u32, 1.0 - n.distance)).collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }

    /// Serialise the graph (hnsw_rs's own dump of graph and data, in one payload:
    /// `u64 graph length, graph bytes, u64 data length, data bytes`, little-endian lengths).
    ///
    /// hnsw_rs dumps into a folder in place; this dumps into a private temporary folder and
    /// reads the result back, so nothing half-written can ever appear under a snapshot.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir().map_err(|e| IndexError::Graph(e.to_string()))?;
        let name = self.graph.file_dump(dir.path(), "g").map_err(|e| IndexError::Graph(e.to_string()))?;
        let graph = std::fs::read(dir.path().join(format!("{name}.hnsw.graph")))
            .map_err(|e| IndexError::Graph(e.to_string()))?;
        let data = std::fs::read(dir.path().join(format!("{name}.hnsw.data")))
            .map_err(|e| IndexError::Graph(e.to_string()))?;
        let mut out = Vec::with_capacity(16 + graph.len() + data.len());
        out.extend_from_slice(&(graph.len() as u64).to_le_bytes());
        out.extend_from_slice(&graph);
        out.extend_from_slice(&(data.len() as u64).to_le_bytes());
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Load a graph written by [`HnswIndex::to_bytes`]. `expected_len` is the number of vectors
    /// the snapshot says the graph holds.
    ///
    /// Callers verify the payload's checksum first. hnsw_rs's loader `assert!`s on malformed
    /// input; any panic it raises is caught here and returned as an error.
    pub fn from_bytes(payload: &[u8], params: HnswParams, expected_len: usize) -> Result<Self> {
        let bad = |m: &str| IndexError::Graph(format!("malformed graph payload: {m}"));
        let (graph, rest) = split_section(payload).ok_or_else(|| bad("graph section"))?;
        let (data, rest) = split_section(rest).ok_or_else(|| bad("data section"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let dir = tempfile::tempdir().map_err(|e| IndexError::Graph(e.to_string()))?;
        std::fs::write(dir.path().join("g.hnsw.graph"), graph).map_err(|e| IndexError::Graph(e.to_string()))?;
        std::fs::write(dir.path().join("g.hnsw.data"), data).map_err(|e| IndexError::Graph(e.to_string()))?;
        // The loaded graph borrows its loader for its whole life; the loader is a few paths and
        // options (data is copied, not mapped), so it is leaked to give the graph a 'static life.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir.path(), "g")));
        let loaded = catch_unwind(AssertUnwindSafe(move || {
            let io = io;
            io.load_hnsw::<f32, DotDistance>()
        }))
        .map_err(|_| bad("the hnsw_rs loader panicked"))?
        .map_err(|e| IndexError::Graph(e.to_string()))?;
        let mut graph = loaded;
        graph.set_searching_mode(true);
        let n = graph.get_nb_point();
        if n != expected_len {
            return Err(IndexError::Graph(format!("graph holds {n} vectors, the snapshot says {expected_len}")));
        }
        Ok(HnswIndex { graph, params, len: n })
    }
}

fn split_section(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    let end = 8usize.checked_add(len)?;
    Some((bytes.get(8..end)?, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_vectors(n: usize, dims: usize, seed: u64) -> VectorSet {
        let mut s = seed;
        let mut data = Vec::with_capacity(n * dims);
        for _ in 0..n {
            let mut v: Vec<f32> = (0..dims)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            data.extend(v);
        }
        VectorSet::new(dims, data).unwrap()
    }

    #[test]
    fn roundtrip_through_bytes_gives_the_same_answers() {
        let set = unit_vectors(600, 32, 7);
        let idx = HnswIndex::build(&set, HnswParams { m: 16, ef_construction: 100 }).unwrap();
        let bytes = idx.to_bytes().unwrap();
        let back = HnswIndex::from_bytes(&bytes, idx.params(), set.len()).unwrap();
        for q in 0..20 {
            assert_eq!(idx.search(set.get(q), 5, 64), back.search(set.get(q), 5, 64));
            assert_eq!(back.search(set.get(q), 1, 64)[0].0, q as u32, "a vector finds itself");
        }
        assert!(HnswIndex::from_bytes(&bytes, idx.params(), 599).is_err(), "count mismatch is refused");
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        let set = unit_vectors(50, 8, 1);
        let idx = HnswIndex::build(&set, HnswParams { m: 8, ef_construction: 50 }).unwrap();
        let mut bytes = idx.to_bytes().unwrap();
        // Overwrite the graph's magic number.
        for b in &mut bytes[8..16] {
            *b ^= 0xff;
        }
        assert!(HnswIndex::from_bytes(&bytes, idx.params(), 50).is_err());
        assert!(HnswIndex::from_bytes(&bytes[..10], idx.params(), 50).is_err());
        assert!(HnswIndex::from_bytes(&[0xff; 16], idx.params(), 50).is_err());
    }

    #[test]
    fn distance_never_goes_negative() {
        let v = [0.6f32, 0.8];
        let w = [0.6000001f32, 0.8000001];
        assert!(DotDistance.eval(&v, &w) >= 0.0);
    }
}
