//! A parser for the hnsw_rs 0.3 dump that v1 snapshots store (`RSNPHNSW` payload), straight
//! into a [`FlatGraph`]: no temporary files, no hnsw_rs loader, and a typed error (never a
//! panic) for any malformed byte.
//!
//! The layout (hnsw_rs-0.3.x/src/hnswio.rs; `usize` is 8 bytes native-endian, which v1 pins to
//! x86-64, i.e. little-endian):
//!
//! ```text
//! graph:  description
//!           u32 magic (0x002a6771 = v3, 0x002a6779 = v4) | u8 mode (1 = full, 0 = light)
//!           | u8 max_nb_connection | [f64 level_scale, v4 only] | u8 nb_layer | usize ef
//!           | usize nb_point | usize dimension | usize len, distance name | usize len, type name
//!         u8 layers
//!         per layer l: u32 0x000a676f | usize points, then per point (rank r):
//!           u32 0x000a678f | usize origin id | [u8 layer = l, i32 rank = r, full mode only]
//!           then nb_layer lists: usize count, count × (usize id | [u8, i32] | f32 distance)
//!         entry point: usize origin id | [u8 layer, i32 rank, full mode only]
//! data:   u32 0xa67f0000 | usize dimension
//!         per point, in the graph's order: u32 0xa67f0000 | u64 origin id | u64 byte length
//!           | dimension × f32
//! ```

use crate::flat::{Csr, FlatGraph};
use crate::{IndexError, Result, VectorSet};

const MAGIC_DESCR_3: u32 = 0x002a_6771;
const MAGIC_DESCR_4: u32 = 0x002a_6779;
const MAGIC_DESCR_2: u32 = 0x002a_677f;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_DATA: u32 = 0xa67f_0000;
const MAX_LAYERS: usize = 16;
const MAX_NAME: usize = 256;

/// What the description of a dump says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Description {
    pub(crate) max_nb_connection: u8,
    pub(crate) ef: usize,
    pub(crate) nb_point: usize,
    pub(crate) dims: usize,
}

/// A parsed graph section.
pub(crate) struct ParsedGraph {
    pub(crate) descr: Description,
    pub(crate) graph: FlatGraph,
    /// Origin ids in dump order (the order of the data section).
    pub(crate) order: Vec<u32>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, pos: 0, what }
    }

    fn err(&self, msg: impl std::fmt::Display) -> IndexError {
        IndexError::Graph(format!("malformed graph payload: {} section, byte {}: {msg}", self.what, self.pos))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!("needs {n} more bytes, {} left", self.remaining())));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_ne_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_ne_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_ne_bytes(self.array()?))
    }

    /// A dumped `usize` (8 bytes), as a `usize` no larger than `max`.
    fn size(&mut self, max: usize, field: &str) -> Result<usize> {
        let v = self.u64()?;
        match usize::try_from(v) {
            Ok(v) if v <= max => Ok(v),
            _ => Err(self.err(format!("{field} {v} is out of range (at most {max})"))),
        }
    }

    fn magic(&mut self, want: u32, field: &str) -> Result<()> {
        let m = self.u32()?;
        if m != want {
            return Err(self.err(format!("bad {field} magic {m:#x}, expected {want:#x}")));
        }
        Ok(())
    }

    fn name(&mut self, field: &str) -> Result<&'a str> {
        let len = self.size(MAX_NAME, field)?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| self.err(format!("{field} is not UTF-8")))
    }
}

/// Per-layer neighbour lists gathered in dump order: `(row, start, len)` spans into `ids`.
#[derive(Default)]
struct LayerLists {
    spans: Vec<(u32, u32, u32)>,
    ids: Vec<u32>,
}

/// Parse the graph section. `expected_len` is the number of points the snapshot says the graph
/// holds; `expected_dims`, when known, the vector dimension.
pub(crate) fn parse_graph(bytes: &[u8], expected_len: usize, expected_dims: Option<usize>) -> Result<ParsedGraph> {
    let mut r = Reader::new(bytes, "graph");
    let v4 = match r.u32()? {
        MAGIC_DESCR_4 => true,
        MAGIC_DESCR_3 => false,
        MAGIC_DESCR_2 => return Err(r.err("hnsw_rs dump format v2 (bincode) is not supported")),
        m => return Err(r.err(format!("bad description magic {m:#x}"))),
    };
    let full = match r.u8()? {
        1 => true,
        0 => false,
        m => return Err(r.err(format!("unknown dump mode {m}"))),
    };
    let max_nb_connection = r.u8()?;
    if v4 {
        r.skip(8)?; // level_scale: only needed to insert more points
    }
    let nb_layer = usize::from(r.u8()?);
    if nb_layer > MAX_LAYERS {
        return Err(r.err(format!("{nb_layer} layers, hnsw_rs has at most {MAX_LAYERS}")));
    }
    let ef = r.size(usize::MAX, "ef_construction")?;
    let nb_point = r.size(u32::MAX as usize, "point count")?;
    if nb_point != expected_len {
        return Err(IndexError::Graph(format!("graph holds {nb_point} vectors, the snapshot says {expected_len}")));
    }
    let dims = r.size(1 << 20, "dimension")?;
    if dims == 0 || expected_dims.is_some_and(|d| d != dims) {
        return Err(r.err(format!("dimension {dims}, expected {}", expected_dims.unwrap_or(1))));
    }
    let dist = r.name("distance name")?;
    if dist.rsplit("::").next() != Some("DotDistance") {
        return Err(r.err(format!("graph was built with distance {dist:?}, not DotDistance")));
    }
    let t_name = r.name("type name")?;
    if t_name != "f32" {
        return Err(r.err(format!("graph holds {t_name:?} vectors, not f32")));
    }
    let descr = Description { max_nb_connection, ef, nb_point, dims };

    let n = nb_point;
    let layers = usize::from(r.u8()?);
    if layers > MAX_LAYERS {
        return Err(r.err(format!("{layers} point layers, hnsw_rs has at most {MAX_LAYERS}")));
    }
    // Per row: the layer it was dumped in (u8::MAX = not seen yet).
    let mut level = vec![u8::MAX; n];
    let mut order: Vec<u32> = Vec::with_capacity(n);
    let mut lists: Vec<LayerLists> = (0..nb_layer).map(|_| LayerLists::default()).collect();
    let entry_len = 8 + if full { 5 } else { 0 } + 4;
    for l in 0..layers {
        r.magic(MAGIC_LAYER, "layer")?;
        let points = r.size(n - order.len(), "points in layer")?;
        for rank in 0..points {
            r.magic(MAGIC_POINT, "point")?;
            let row = r.size(n.saturating_sub(1), "point id")?;
            if n == 0 || level[row] != u8::MAX {
                return Err(r.err(format!("point {row} appears twice")));
            }
            if full {
                let (pl, pr) = (r.u8()?, r.i32()?);
                if usize::from(pl) != l || usize::try_from(pr).ok() != Some(rank) {
                    return Err(r.err(format!("point {row} says layer {pl} rank {pr}, found at layer {l} rank {rank}")));
                }
            }
            level[row] = l as u8;
            order.push(row as u32);
            for layer_lists in lists.iter_mut() {
                let count = r.size(r.remaining() / entry_len, "neighbour count")?;
                let start = layer_lists.ids.len();
                for _ in 0..count {
                    let id = r.size(n.saturating_sub(1), "neighbour id")?;
                    r.skip(entry_len - 8)?;
                    layer_lists.ids.push(id as u32);
                }
                if count > 0 {
                    layer_lists.spans.push((row as u32, start as u32, count as u32));
                }
            }
        }
    }
    if order.len() != n {
        return Err(r.err(format!("{} points dumped, the description says {n}", order.len())));
    }
    let entry = r.size(n.saturating_sub(1), "entry point id")?;
    if n == 0 {
        return Err(r.err("an empty graph has no entry point"));
    }
    let top = usize::from(level[entry]);
    if full {
        let (el, er) = (r.u8()?, r.i32()?);
        if usize::from(el) != top || er < 0 {
            return Err(r.err(format!("entry point {entry} says layer {el} rank {er}, it was dumped at layer {top}")));
        }
    }
    if r.remaining() != 0 {
        return Err(r.err(format!("{} trailing bytes", r.remaining())));
    }
    // Lists above the entry point's layer are never searched (hnsw_rs starts at that layer too).
    let csr = (0..=top)
        .map(|l| match lists.get(l) {
            Some(ll) => {
                Csr::from_lists(n, ll.spans.iter().map(|&(row, s, len)| (row, &ll.ids[s as usize..(s + len) as usize])))
            }
            None => Csr::from_lists(n, std::iter::empty()),
        })
        .collect();
    Ok(ParsedGraph { descr, graph: FlatGraph { n, layers: csr, entry: entry as u32 }, order })
}

/// Walk the data section: check every header against the graph, and hand each row's raw
/// little-endian floats to `row`.
fn walk_data<'a>(
    bytes: &'a [u8],
    parsed: &ParsedGraph,
    mut row: impl FnMut(u32, &'a [u8]) -> Result<()>,
) -> Result<()> {
    let mut r = Reader::new(bytes, "data");
    let dims = parsed.descr.dims;
    // The section's size follows from the point count and dimension: check it before anything
    // is allocated for it.
    let expected = (dims.checked_mul(4).and_then(|b| b.checked_add(20)))
        .and_then(|per| per.checked_mul(parsed.order.len()))
        .and_then(|all| all.checked_add(12));
    if expected != Some(bytes.len()) {
        return Err(r.err(format!(
            "{} bytes for {} points of {dims} dims (expected {})",
            bytes.len(),
            parsed.order.len(),
            expected.map_or_else(|| "an overflowing size".to_string(), |e| e.to_string())
        )));
    }
    r.magic(MAGIC_DATA, "data header")?;
    let d = r.size(1 << 20, "dimension")?;
    if d != dims {
        return Err(r.err(format!("data dimension {d}, the graph says {dims}")));
    }
    for &origin in &parsed.order {
        r.magic(MAGIC_DATA, "data point")?;
        let o = r.u64()?;
        if o != u64::from(origin) {
            return Err(r.err(format!("data point {o} where the graph has point {origin}")));
        }
        let len = r.u64()?;
        if len != (dims * 4) as u64 {
            return Err(r.err(format!("data point of {len} bytes, expected {}", dims * 4)));
        }
        let floats = r.take(dims * 4)?;
        row(origin, floats)?;
    }
    if r.remaining() != 0 {
        return Err(r.err(format!("{} trailing bytes", r.remaining())));
    }
    Ok(())
}

/// Decode the data section into a [`VectorSet`] (rows by origin id).
pub(crate) fn decode_data(bytes: &[u8], parsed: &ParsedGraph) -> Result<VectorSet> {
    let dims = parsed.descr.dims;
    if parsed.graph.n.checked_mul(dims).and_then(|f| f.checked_mul(4)).is_none_or(|b| b > bytes.len()) {
        return Err(IndexError::Graph(format!(
            "malformed graph payload: {} points of {dims} dims do not fit in a {}-byte data section",
            parsed.graph.n,
            bytes.len()
        )));
    }
    let mut data = vec![0f32; parsed.graph.n * dims];
    walk_data(bytes, parsed, |row, floats| {
        let dst = &mut data[row as usize * dims..(row as usize + 1) * dims];
        for (d, b) in dst.iter_mut().zip(floats.chunks_exact(4)) {
            *d = f32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    })?;
    VectorSet::new(dims, data)
}

/// Check that the data section holds exactly `vectors` (bit for bit), so that searching the
/// graph over `vectors` is searching it over the data it was built on.
pub(crate) fn check_data(bytes: &[u8], parsed: &ParsedGraph, vectors: &VectorSet) -> Result<()> {
    if vectors.dims() != parsed.descr.dims || vectors.len() != parsed.graph.n {
        return Err(IndexError::Graph(format!(
            "graph holds {} vectors of {} dims, the vector set {} of {}",
            parsed.graph.n,
            parsed.descr.dims,
            vectors.len(),
            vectors.dims()
        )));
    }
    walk_data(bytes, parsed, |row, floats| {
        let want = vectors.get(row as usize);
        let same = want.iter().zip(floats.chunks_exact(4)).all(|(w, b)| w.to_ne_bytes() == [b[0], b[1], b[2], b[3]]);
        if same {
            Ok(())
        } else {
            Err(IndexError::Graph(format!("hnsw data of row {row} differs from the vector set")))
        }
    })
}
