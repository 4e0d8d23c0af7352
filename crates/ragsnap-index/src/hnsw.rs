//! The HNSW index: built with `hnsw_rs` over L2-normalised vectors (distance `1 - dot`), then
//! copied into the flat read-only graph of [`crate::flat`] that every search runs on; written to
//! and read from a snapshot's `index.hnsw` artifact as an hnsw_rs 0.3 dump ([`crate::dump`]).

use crate::flat::{Csr, FlatGraph};
use crate::idmap::{IdMap, UpdatePlan};
use crate::{dot, dump, IndexError, Result, VectorSet};
use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{Distance, Hnsw};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

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
#[serde(deny_unknown_fields)]
pub struct HnswParams {
    /// Links per node per layer (`M`).
    pub m: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
}

/// An HNSW graph over a vector set, rows numbered from 0.
///
/// hnsw_rs builds the graph; every search runs on a flat copy of it ([`crate::flat`]) over the
/// shared vectors. A graph loaded from a snapshot is parsed straight into the flat form and holds
/// no hnsw_rs structure at all.
pub struct HnswIndex {
    flat: FlatGraph,
    vectors: Arc<VectorSet>,
    params: HnswParams,
    /// The hnsw_rs graph, kept when this index was built (it is what [`HnswIndex::to_bytes`]
    /// dumps); `None` for a graph loaded from bytes.
    built: Option<Hnsw<'static, f32, DotDistance>>,
    /// Which row each point answers for, when the graph was updated rather than built over the
    /// rows (`None`: point `i` is row `i`). `vectors` then holds the graph's points, deleted
    /// ones included, in point order.
    map: Option<Arc<IdMap>>,
}

const MAX_LAYERS: usize = 16;

impl HnswIndex {
    /// Build over every vector of `set`, inserting in parallel on the rayon pool. The vectors
    /// are copied once; [`HnswIndex::build_shared`] shares them instead.
    pub fn build(set: &VectorSet, params: HnswParams) -> Result<Self> {
        Self::build_shared(Arc::new(set.clone()), params)
    }

    /// Build over every vector of `set`, keeping a reference to it for searching.
    pub fn build_shared(set: Arc<VectorSet>, params: HnswParams) -> Result<Self> {
        if params.m == 0 || params.m > 256 {
            return Err(IndexError::Graph(format!("M must be 1..=256, got {}", params.m)));
        }
        let graph = Hnsw::new(params.m, set.len().max(1), MAX_LAYERS, params.ef_construction, DotDistance);
        let rows: Vec<(&[f32], usize)> = (0..set.len()).map(|i| (set.get(i), i)).collect();
        graph.parallel_insert_slice(&rows);
        drop(rows);
        let mut graph = graph;
        graph.set_searching_mode(true);
        let flat = flat_from_hnsw(&graph, set.len())?;
        Ok(HnswIndex { flat, vectors: set, params, built: Some(graph), map: None })
    }

    /// Construction parameters.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Number of points in the graph (deleted ones included).
    pub fn len(&self) -> usize {
        self.flat.n
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.flat.n == 0
    }

    /// The vectors of the graph's points, in point order (for a graph without an id map,
    /// the rows).
    pub fn vectors(&self) -> &Arc<VectorSet> {
        &self.vectors
    }

    /// The id map of an updated graph (`None`: built over the rows, point `i` is row `i`).
    pub fn id_map(&self) -> Option<&IdMap> {
        self.map.as_deref()
    }

    /// Top-`k` rows as `(row, score)` with score = dot product (clamped to ≤ 1), best first,
    /// ties by row; at most `k`, no row twice, never a deleted point. `ef` (raised to `k`) is
    /// the beam width.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        let Some(map) = self.map.as_deref() else {
            return self.flat.search(&self.vectors, query, k, ef);
        };
        let mut hits: Vec<(u32, f32)> = self
            .flat
            .search_live(&self.vectors, query, k, ef, |p| map.row(p).is_some())
            .into_iter()
            .filter_map(|(p, s)| map.row(p).map(|r| (r, s)))
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }

    /// Load the graph of an updated snapshot: the payload written by [`HnswIndex::to_bytes`],
    /// its id map, and the snapshot's `rows`. The payload's data section is decoded (deleted
    /// points need their vectors to be walked through) and every live point's vector is checked
    /// bit for bit against the row it answers for.
    pub fn from_bytes_mapped(payload: &[u8], params: HnswParams, rows: &VectorSet, map: IdMap) -> Result<Self> {
        let (graph, data) = split_payload(payload)?;
        let parsed = dump::parse_graph(graph, map.points(), Some(rows.dims()))?;
        let vectors = dump::decode_data(data, &parsed)?;
        if map.live() != rows.len() {
            return Err(IndexError::Graph(format!("id map has {} rows, the snapshot {}", map.live(), rows.len())));
        }
        for p in 0..map.points() {
            if let Some(r) = map.row(p as u32) {
                let same = vectors.get(p).iter().zip(rows.get(r as usize)).all(|(a, b)| a.to_bits() == b.to_bits());
                if !same {
                    return Err(IndexError::Graph(format!("graph point {p} differs from row {r} it answers for")));
                }
            }
        }
        Ok(HnswIndex { flat: parsed.graph, vectors: Arc::new(vectors), params, built: None, map: Some(Arc::new(map)) })
    }

    /// Update a graph instead of rebuilding it: load `payload` (this index's own bytes, as
    /// written by [`HnswIndex::to_bytes`]) into hnsw_rs, insert the rows `plan` says are new,
    /// in parallel, and search the result through the plan's id map. `self` is the graph the
    /// payload holds (its point vectors and map are what `plan` was made from); `rows` are the
    /// new snapshot's rows.
    pub fn updated(&self, payload: &[u8], rows: &VectorSet, plan: UpdatePlan) -> Result<Self> {
        let old_points = self.len();
        if plan.map.points() != old_points + plan.insert.len() || self.vectors.dims() != rows.dims() {
            return Err(IndexError::Graph("update plan does not fit this graph".into()));
        }
        let mut graph = load_hnsw_rs(payload)?;
        if graph.get_nb_point() != old_points {
            return Err(IndexError::Graph(format!(
                "the payload holds {} points, the graph being updated {old_points}",
                graph.get_nb_point()
            )));
        }
        for p in graph.get_point_indexation() {
            let id = p.get_origin_id();
            if id >= old_points || p.get_v() != self.vectors.get(id) {
                return Err(IndexError::Graph(format!("the payload's point {id} is not the graph's point {id}")));
            }
        }
        graph.set_searching_mode(false);
        let mut data = Vec::with_capacity((old_points + plan.insert.len()) * rows.dims());
        data.extend_from_slice(self.vectors.as_slice());
        for &r in &plan.insert {
            data.extend_from_slice(rows.get(r as usize));
        }
        let vectors = Arc::new(VectorSet::new(rows.dims(), data)?);
        let new_rows: Vec<(&[f32], usize)> = (old_points..vectors.len()).map(|p| (vectors.get(p), p)).collect();
        graph.parallel_insert_slice(&new_rows);
        drop(new_rows);
        graph.set_searching_mode(true);
        let flat = flat_from_hnsw(&graph, vectors.len())?;
        Ok(HnswIndex { flat, vectors, params: self.params, built: Some(graph), map: Some(Arc::new(plan.map)) })
    }

    /// The same query answered by hnsw_rs's own search of the graph it built (`None` for a
    /// graph loaded from bytes). For comparisons in tests and benchmarks.
    #[doc(hidden)]
    pub fn search_hnsw_rs(&self, query: &[f32], k: usize, ef: usize) -> Option<Vec<(u32, f32)>> {
        let graph = self.built.as_ref().filter(|_| self.map.is_none())?;
        if self.flat.n == 0 || k == 0 {
            return Some(Vec::new());
        }
        let mut hits: Vec<(u32, f32)> =
            graph.search(query, k, ef.max(k)).into_iter().map(|n| (n.d_id as u32, 1.0 - n.distance)).collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(hits)
    }

    /// Serialise the graph (hnsw_rs's own dump of graph and data, in one payload:
    /// `u64 graph length, graph bytes, u64 data length, data bytes`, little-endian lengths).
    ///
    /// hnsw_rs dumps into a folder in place; this dumps into a private temporary folder and
    /// reads the result back, so nothing half-written can ever appear under a snapshot. Only an
    /// index made by [`HnswIndex::build`] can be dumped (a loaded one came from such bytes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let Some(graph) = self.built.as_ref() else {
            return Err(IndexError::Graph("only a freshly built graph can be serialised".into()));
        };
        let dir = tempfile::tempdir().map_err(|e| IndexError::Graph(e.to_string()))?;
        let name = graph.file_dump(dir.path(), "g").map_err(|e| IndexError::Graph(e.to_string()))?;
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

    /// Load a graph written by [`HnswIndex::to_bytes`], with the vectors of its own data
    /// section. `expected_len` is the number of vectors the snapshot says the graph holds.
    ///
    /// The payload is parsed directly (no hnsw_rs loader, no temporary files); malformed
    /// bytes give an error, never a panic.
    pub fn from_bytes(payload: &[u8], params: HnswParams, expected_len: usize) -> Result<Self> {
        let (graph, data) = split_payload(payload)?;
        let parsed = dump::parse_graph(graph, expected_len, None)?;
        let vectors = Arc::new(dump::decode_data(data, &parsed)?);
        Ok(HnswIndex { flat: parsed.graph, vectors, params, built: None, map: None })
    }

    /// Load a graph written by [`HnswIndex::to_bytes`] to be searched over `vectors` (the
    /// snapshot's vector artifact), which must be, bit for bit, the data the payload holds:
    /// the data section is checked against it, not decoded, so the vectors live in memory once.
    pub fn from_bytes_with_vectors(payload: &[u8], params: HnswParams, vectors: Arc<VectorSet>) -> Result<Self> {
        let (graph, data) = split_payload(payload)?;
        let parsed = dump::parse_graph(graph, vectors.len(), Some(vectors.dims()))?;
        dump::check_data(data, &parsed, &vectors)?;
        Ok(HnswIndex { flat: parsed.graph, vectors, params, built: None, map: None })
    }

    /// The loader used before v1 snapshots were parsed directly: the payload is written to a
    /// temporary folder and read back by hnsw_rs's `HnswIo`. Kept to check that the direct
    /// parser answers identically.
    #[doc(hidden)]
    pub fn from_bytes_via_hnsw_rs(payload: &[u8], params: HnswParams, expected_len: usize) -> Result<Self> {
        let mut graph = load_hnsw_rs(payload)?;
        graph.set_searching_mode(true);
        let n = graph.get_nb_point();
        if n != expected_len {
            return Err(IndexError::Graph(format!("graph holds {n} vectors, the snapshot says {expected_len}")));
        }
        let parsed = dump::parse_graph(split_payload(payload)?.0, n, None)?;
        let vectors = Arc::new(dump::decode_data(split_payload(payload)?.1, &parsed)?);
        let flat = flat_from_hnsw(&graph, n)?;
        Ok(HnswIndex { flat, vectors, params, built: Some(graph), map: None })
    }
}

/// Load a payload written by [`HnswIndex::to_bytes`] with hnsw_rs's own loader (`HnswIo`, from
/// a temporary folder), as a graph more points can be inserted into.
fn load_hnsw_rs(payload: &[u8]) -> Result<Hnsw<'static, f32, DotDistance>> {
    {
        let bad = |m: &str| IndexError::Graph(format!("malformed graph payload: {m}"));
        let (graph, data) = split_payload(payload)?;
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
        Ok(loaded)
    }
}

/// Copy hnsw_rs's graph into flat arrays. Rows are the data ids `0..n`.
fn flat_from_hnsw(graph: &Hnsw<'static, f32, DotDistance>, n: usize) -> Result<FlatGraph> {
    let top = usize::from(graph.get_max_level_observed());
    let mut lists: Vec<Vec<(u32, Vec<u32>)>> = vec![Vec::new(); top + 1];
    let mut entry = None;
    let mut seen = 0usize;
    for p in graph.get_point_indexation() {
        let row = p.get_origin_id();
        if row >= n {
            return Err(IndexError::Graph(format!("graph point id {row} out of range (n = {n})")));
        }
        seen += 1;
        let pid = p.get_point_id();
        if usize::from(pid.0) == top && pid.1 == 0 {
            entry = Some(row as u32);
        }
        for (l, nbs) in p.get_neighborhood_id().into_iter().enumerate().take(top + 1) {
            if !nbs.is_empty() {
                lists[l].push((row as u32, nbs.iter().map(|nb| nb.d_id as u32).collect()));
            }
        }
    }
    if seen != n {
        return Err(IndexError::Graph(format!("graph holds {seen} points, expected {n}")));
    }
    let layers = lists.iter().map(|l| Csr::from_lists(n, l.iter().map(|(r, v)| (*r, v.as_slice())))).collect();
    Ok(FlatGraph { n, layers, entry: entry.unwrap_or(0) })
}

fn split_payload(payload: &[u8]) -> Result<(&[u8], &[u8])> {
    let bad = |m: &str| IndexError::Graph(format!("malformed graph payload: {m}"));
    let (graph, rest) = split_section(payload).ok_or_else(|| bad("graph section"))?;
    let (data, rest) = split_section(rest).ok_or_else(|| bad("data section"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok((graph, data))
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
        let shared = HnswIndex::from_bytes_with_vectors(&bytes, idx.params(), Arc::new(set.clone())).unwrap();
        let old = HnswIndex::from_bytes_via_hnsw_rs(&bytes, idx.params(), set.len()).unwrap();
        assert_eq!(back.vectors().as_slice(), set.as_slice(), "the data section decodes to the vectors");
        assert!(back.flat == shared.flat && back.flat == old.flat, "every loader makes the same graph");
        for q in 0..20 {
            assert_eq!(idx.search(set.get(q), 5, 64), back.search(set.get(q), 5, 64));
            assert_eq!(back.search(set.get(q), 5, 64), shared.search(set.get(q), 5, 64));
            assert_eq!(back.search(set.get(q), 1, 64)[0].0, q as u32, "a vector finds itself");
        }
        assert!(HnswIndex::from_bytes(&bytes, idx.params(), 599).is_err(), "count mismatch is refused");
        assert!(back.to_bytes().is_err(), "a loaded graph has no hnsw_rs dump to write");
        let mut other = set.as_slice().to_vec();
        other[5] += 0.25;
        let other = Arc::new(VectorSet::new(32, other).unwrap());
        assert!(HnswIndex::from_bytes_with_vectors(&bytes, idx.params(), other).is_err(), "other vectors are refused");
        let short = Arc::new(VectorSet::new(32, set.as_slice()[..32 * 599].to_vec()).unwrap());
        assert!(HnswIndex::from_bytes_with_vectors(&bytes, idx.params(), short).is_err());
    }

    fn recall(truth: &[Vec<(u32, f32)>], got: &[Vec<(u32, f32)>], k: usize) -> f64 {
        let hit: usize =
            truth.iter().zip(got).map(|(t, g)| g.iter().filter(|h| t.iter().take(k).any(|x| x.0 == h.0)).count()).sum();
        hit as f64 / (truth.len() * k) as f64
    }

    #[test]
    fn flat_search_is_as_good_as_hnsw_rs_and_sorted_without_duplicates() {
        // hnsw_rs's parallel build is not deterministic, and at small ef which layer-0 node a
        // search starts from moves recall by a percent either way (its descent makes one pass
        // per layer, the flat one descends until no neighbour is closer). So: 1,000 queries,
        // ef from 16 up, and both a per-ef bound and a tighter bound on the mean.
        let set = unit_vectors(3000, 48, 11);
        let queries = unit_vectors(1000, 48, 12);
        let idx = HnswIndex::build(&set, HnswParams { m: 12, ef_construction: 100 }).unwrap();
        let k = 10;
        let truth: Vec<Vec<(u32, f32)>> =
            (0..queries.len()).map(|q| crate::exact_search(&set, queries.get(q), k)).collect();
        let (mut sum_flat, mut sum_theirs) = (0.0, 0.0);
        let efs = [16, 32, 64];
        for ef in efs {
            let flat: Vec<Vec<(u32, f32)>> = (0..queries.len()).map(|q| idx.search(queries.get(q), k, ef)).collect();
            let theirs: Vec<Vec<(u32, f32)>> =
                (0..queries.len()).map(|q| idx.search_hnsw_rs(queries.get(q), k, ef).unwrap()).collect();
            let (rf, rt) = (recall(&truth, &flat, k), recall(&truth, &theirs, k));
            assert!(rf >= rt - 0.01, "ef {ef}: flat recall {rf} < hnsw_rs recall {rt}");
            sum_flat += rf;
            sum_theirs += rt;
            for hits in &flat {
                assert_eq!(hits.len(), k);
                assert!(hits.windows(2).all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0)), "{hits:?}");
                let mut rows: Vec<u32> = hits.iter().map(|h| h.0).collect();
                rows.sort_unstable();
                rows.dedup();
                assert_eq!(rows.len(), k, "no row twice");
            }
        }
        let n = efs.len() as f64;
        assert!(
            sum_flat / n >= sum_theirs / n - 0.004,
            "mean recall: flat {} < hnsw_rs {}",
            sum_flat / n,
            sum_theirs / n
        );
        // Scores are dot products, as exact search gives them.
        for q in 0..10 {
            for (row, score) in idx.search(queries.get(q), k, 64) {
                assert!((score - crate::dot(set.get(row as usize), queries.get(q))).abs() < 1e-6);
            }
        }
        assert!(idx.search(queries.get(0), 0, 64).is_empty());
        assert_eq!(idx.search(queries.get(0), 5000, 16).len(), 3000, "k above n gives every row once");
    }

    #[test]
    fn searches_from_many_threads_agree() {
        let set = unit_vectors(1500, 16, 3);
        let idx = Arc::new(HnswIndex::build(&set, HnswParams { m: 8, ef_construction: 64 }).unwrap());
        let want: Vec<_> = (0..50).map(|q| idx.search(set.get(q), 5, 32)).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for (q, w) in want.iter().enumerate() {
                        assert_eq!(&idx.search(set.get(q), 5, 32), w);
                    }
                });
            }
        });
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
    fn the_direct_parser_survives_every_truncation_and_bit_flips() {
        let set = unit_vectors(120, 8, 5);
        let idx = HnswIndex::build(&set, HnswParams { m: 4, ef_construction: 32 }).unwrap();
        let bytes = idx.to_bytes().unwrap();
        let params = idx.params();
        let shared = Arc::new(set.clone());
        for cut in 0..bytes.len() {
            assert!(HnswIndex::from_bytes(&bytes[..cut], params, 120).is_err(), "truncation at {cut}");
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let bit = (s % (bytes.len() as u64 * 8)) as usize;
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            // Must not panic; a flip in a stored distance or a float may still load.
            if let Ok(g) = HnswIndex::from_bytes(&b, params, 120) {
                let hits = g.search(set.get(0), 5, 16);
                assert!(hits.len() <= 5);
            }
            if let Ok(g) = HnswIndex::from_bytes_with_vectors(&b, params, shared.clone()) {
                assert!(g.search(set.get(1), 5, 16).len() <= 5);
            }
            // Several bytes at once, set to extreme values.
            let mut b = bytes.clone();
            let at = (s >> 20) as usize % (bytes.len() - 8);
            b[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
            let _ = HnswIndex::from_bytes(&b, params, 120).map(|g| g.search(set.get(2), 3, 8));
        }
    }

    #[test]
    fn a_description_claiming_a_huge_dimension_is_refused_before_allocating() {
        let set = unit_vectors(40, 8, 9);
        let idx = HnswIndex::build(&set, HnswParams { m: 4, ef_construction: 16 }).unwrap();
        let mut bytes = idx.to_bytes().unwrap();
        // Description: magic u32, mode u8, M u8, level_scale f64, layers u8, ef usize, points
        // usize, then the dimension (usize) at byte 8 + 31 of the payload.
        let at = 8 + 4 + 1 + 1 + 8 + 1 + 8 + 8;
        assert_eq!(u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()), 8, "dimension field located");
        bytes[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
        assert!(HnswIndex::from_bytes(&bytes, idx.params(), 40).is_err());
        bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(HnswIndex::from_bytes(&bytes, idx.params(), 40).is_err());
    }

    /// The frozen v1 snapshot's graph, parsed directly and loaded by hnsw_rs, answers alike.
    #[test]
    fn frozen_v1_graph_parses_to_what_hnsw_rs_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../snapshots/compat/v1/store/snapshots");
        let Some(snap) = std::fs::read_dir(&dir).ok().and_then(|mut d| d.next()).and_then(|e| e.ok()) else {
            panic!("no frozen snapshot under {}", dir.display());
        };
        let framed = std::fs::read(snap.path().join("index.hnsw")).unwrap();
        let payload = &framed[16..framed.len() - 48];
        let vecs = std::fs::read(snap.path().join("vectors.bin")).unwrap();
        let body = &vecs[16..vecs.len() - 48];
        let dims = u32::from_le_bytes(body[..4].try_into().unwrap()) as usize;
        let floats: Vec<f32> = body[12..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let set = Arc::new(VectorSet::new(dims, floats).unwrap());
        let params = HnswParams { m: 16, ef_construction: 200 };
        let new = HnswIndex::from_bytes_with_vectors(payload, params, set.clone()).unwrap();
        let old = HnswIndex::from_bytes_via_hnsw_rs(payload, params, set.len()).unwrap();
        assert!(new.flat == old.flat, "same graph");
        let k = 10.min(set.len());
        let truth: Vec<_> = (0..set.len()).map(|q| crate::exact_search(&set, set.get(q), k)).collect();
        let got: Vec<_> = (0..set.len()).map(|q| new.search(set.get(q), k, 16)).collect();
        let theirs: Vec<_> = (0..set.len()).map(|q| old.search_hnsw_rs(set.get(q), k, 16).unwrap()).collect();
        assert!(recall(&truth, &got, k) >= recall(&truth, &theirs, k) - 1e-9);
        for (g, t) in got.iter().zip(&theirs) {
            assert_eq!(g.iter().map(|h| h.0).collect::<Vec<_>>(), t.iter().map(|h| h.0).collect::<Vec<_>>());
        }
    }

    /// Rows `drop..n` of `base` kept, then `extra` appended: a source with some pages gone and
    /// some new.
    fn changed_rows(base: &VectorSet, drop: usize, extra: &VectorSet) -> VectorSet {
        let mut data = base.as_slice()[drop * base.dims()..].to_vec();
        data.extend_from_slice(extra.as_slice());
        VectorSet::new(base.dims(), data).unwrap()
    }

    #[test]
    fn an_updated_graph_answers_live_rows_only_and_round_trips_with_its_map() {
        let params = HnswParams { m: 8, ef_construction: 64 };
        let base = unit_vectors(800, 16, 21);
        let head = HnswIndex::build(&base, params).unwrap();
        let payload = head.to_bytes().unwrap();
        let rows = changed_rows(&base, 60, &unit_vectors(40, 16, 22));
        let plan = crate::plan_update(head.vectors(), None, &rows).unwrap();
        assert_eq!((plan.insert.len(), plan.newly_deleted), (40, 60));
        let updated = head.updated(&payload, &rows, plan).unwrap();
        assert_eq!((updated.len(), updated.id_map().unwrap().deleted()), (840, 60));
        let k = 10;
        let queries: Vec<usize> = (0..rows.len()).step_by(7).collect();
        let truth: Vec<_> = queries.iter().map(|&q| crate::exact_search(&rows, rows.get(q), k)).collect();
        let got: Vec<_> = queries.iter().map(|&q| updated.search(rows.get(q), k, 64)).collect();
        for hits in &got {
            assert_eq!(hits.len(), k);
            assert!(hits.iter().all(|&(r, _)| (r as usize) < rows.len()));
        }
        // Each query's own row is its best answer (a deleted point with the same vector as a
        // live row would have to be filtered, not returned under a wrong row).
        for (&q, hits) in queries.iter().zip(&got) {
            assert_eq!(hits[0].0 as usize, q);
        }
        // Queried with the vectors of deleted rows, nothing deleted comes back.
        for d in 0..60 {
            let hits = updated.search(base.get(d), k, 64);
            assert!(hits.iter().all(|&(r, s)| (s - dot(rows.get(r as usize), base.get(d))).abs() < 1e-5));
        }
        assert!(recall(&truth, &got, k) >= 0.95, "{}", recall(&truth, &got, k));

        // What a snapshot stores (graph and map) loads back to the same answers.
        let bytes = updated.to_bytes().unwrap();
        let map = updated.id_map().unwrap().clone();
        let loaded = HnswIndex::from_bytes_mapped(&bytes, params, &rows, map.clone()).unwrap();
        for &q in &queries {
            assert_eq!(loaded.search(rows.get(q), k, 64), updated.search(rows.get(q), k, 64));
        }
        // A live row whose vector is not its point's is refused.
        let mut other = rows.as_slice().to_vec();
        other[5 * 16] += 0.25;
        let other = VectorSet::new(16, other).unwrap();
        assert!(HnswIndex::from_bytes_mapped(&bytes, params, &other, map.clone()).is_err());
        // So is a map of another size than the graph.
        let short = IdMap::new((0..rows.len() as u32).collect(), rows.len()).unwrap();
        assert!(HnswIndex::from_bytes_mapped(&bytes, params, &rows, short).is_err());

        // A second update grows the loaded graph again; its deleted points stay deleted.
        let rows2 = changed_rows(&rows, 10, &unit_vectors(5, 16, 23));
        let plan2 = crate::plan_update(loaded.vectors(), loaded.id_map(), &rows2).unwrap();
        assert_eq!((plan2.insert.len(), plan2.newly_deleted), (5, 10));
        let twice = loaded.updated(&bytes, &rows2, plan2).unwrap();
        assert_eq!(twice.id_map().unwrap().deleted(), 70);
        for q in (0..rows2.len()).step_by(11) {
            assert_eq!(twice.search(rows2.get(q), 1, 64)[0].0 as usize, q);
        }
        // The payload must be the graph's own.
        let plan3 = crate::plan_update(loaded.vectors(), loaded.id_map(), &rows2).unwrap();
        assert!(loaded.updated(&payload, &rows2, plan3).is_err(), "another graph's bytes are refused");
    }

    #[test]
    fn distance_never_goes_negative() {
        let v = [0.6f32, 0.8];
        let w = [0.6000001f32, 0.8000001];
        assert!(DotDistance.eval(&v, &w) >= 0.0);
    }
}
