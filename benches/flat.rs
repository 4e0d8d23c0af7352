//! A lean read-only searcher over a graph that hnsw_rs built: every layer's neighbour lists copied
//! into flat `u32` arrays, a generation-stamped visited array instead of a `HashMap`, two binary
//! heaps of plain `(distance, id)` pairs instead of `Arc`-allocated entries, and the SIMD dot of
//! [`crate::fastdot`].
//!
//! It answers "is hnsw_rs's graph good and only its search slow?": the benchmark runs it on the
//! very graph `HnswIndex::build` code makes and compares queries/s at equal recall. ragsnap
//! snapshots are immutable once built, so such a copy could be made once at snapshot open.

use crate::fastdot;
use hnsw_rs::prelude::{Distance, Hnsw};
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// `(distance, row)` ordered by distance, then row.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cand(f32, u32);

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Flat copy of an HNSW graph plus its vectors.
pub struct FlatHnsw {
    dims: usize,
    data: Vec<f32>,
    /// Layer-0 adjacency in CSR form.
    offsets0: Vec<u32>,
    neigh0: Vec<u32>,
    /// Upper layers: `upper[l - 1][row]` (empty for rows below layer `l`).
    upper: Vec<Vec<Vec<u32>>>,
    entry: u32,
    top: usize,
    scratch: RefCell<(Vec<u32>, u32)>,
}

impl FlatHnsw {
    /// Copy `graph` (whose data ids are the rows `0..n` of `data`).
    pub fn from_hnsw<D: Distance<f32> + Send + Sync>(graph: &Hnsw<'_, f32, D>, dims: usize, data: &[f32]) -> Self {
        let n = data.len() / dims;
        let mut levels = vec![0usize; n];
        let mut lists: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
        for p in graph.get_point_indexation() {
            let row = p.get_origin_id();
            levels[row] = usize::from(p.get_point_id().0);
            lists[row] =
                p.get_neighborhood_id().into_iter().map(|l| l.into_iter().map(|nb| nb.d_id as u32).collect()).collect();
        }
        let top = levels.iter().copied().max().unwrap_or(0);
        let entry = levels.iter().position(|&l| l == top).unwrap_or(0) as u32;
        let mut offsets0 = Vec::with_capacity(n + 1);
        let mut neigh0 = Vec::new();
        offsets0.push(0u32);
        for l in &lists {
            if let Some(l0) = l.first() {
                neigh0.extend_from_slice(l0);
            }
            offsets0.push(neigh0.len() as u32);
        }
        let upper: Vec<Vec<Vec<u32>>> =
            (1..=top).map(|layer| lists.iter().map(|l| l.get(layer).cloned().unwrap_or_default()).collect()).collect();
        FlatHnsw {
            dims,
            data: data.to_vec(),
            offsets0,
            neigh0,
            upper,
            entry,
            top,
            scratch: RefCell::new((vec![0; n], 0)),
        }
    }

    #[inline]
    fn dist(&self, q: &[f32], row: u32) -> f32 {
        let r = row as usize * self.dims;
        (1.0 - fastdot::dot(q, &self.data[r..r + self.dims])).max(0.0)
    }

    /// Top-`k` rows as `(row, score = dot)`, best first, exploring `ef` candidates on layer 0.
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        let ef = ef.max(k);
        // Greedy descent through the upper layers.
        let mut ep = self.entry;
        let mut ep_d = self.dist(q, ep);
        for layer in (1..=self.top).rev() {
            let lists = &self.upper[layer - 1];
            loop {
                let mut moved = false;
                for &nb in &lists[ep as usize] {
                    let d = self.dist(q, nb);
                    if d < ep_d {
                        ep = nb;
                        ep_d = d;
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        // Beam search on layer 0.
        let mut scratch = self.scratch.borrow_mut();
        let (visited, stamp) = &mut *scratch;
        *stamp = stamp.wrapping_add(1);
        if *stamp == 0 {
            visited.iter_mut().for_each(|v| *v = 0);
            *stamp = 1;
        }
        let stamp = *stamp;
        let mut candidates: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef * 2);
        let mut best: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef + 1);
        visited[ep as usize] = stamp;
        candidates.push(Reverse(Cand(ep_d, ep)));
        best.push(Cand(ep_d, ep));
        while let Some(Reverse(Cand(d, c))) = candidates.pop() {
            if best.len() >= ef && d > best.peek().map_or(f32::INFINITY, |b| b.0) {
                break;
            }
            let (s, e) = (self.offsets0[c as usize] as usize, self.offsets0[c as usize + 1] as usize);
            for &nb in &self.neigh0[s..e] {
                if visited[nb as usize] == stamp {
                    continue;
                }
                visited[nb as usize] = stamp;
                let dn = self.dist(q, nb);
                if best.len() < ef || dn < best.peek().map_or(f32::INFINITY, |b| b.0) {
                    candidates.push(Reverse(Cand(dn, nb)));
                    best.push(Cand(dn, nb));
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
        }
        let mut hits: Vec<(u32, f32)> = best.into_sorted_vec().into_iter().take(k).map(|c| (c.1, 1.0 - c.0)).collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits
    }
}
