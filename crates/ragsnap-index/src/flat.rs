//! The read-only searcher every HNSW query runs on: the graph hnsw_rs built (or the graph of a
//! stored hnsw_rs dump) copied into flat arrays.
//!
//! * each layer's neighbour lists in CSR form (`u32` offsets per row, `u32` neighbour rows);
//! * the entry point and the top layer;
//! * vectors read from the shared [`VectorSet`] (never copied);
//! * per thread, a generation-stamped `Vec<u32>` visited array and reusable heaps of plain
//!   `(distance, row)` pairs, so a query allocates only its result.
//!
//! The search is the usual HNSW one (greedy descent through the upper layers, then a beam of
//! `ef` candidates on layer 0) with the same distance as [`crate::DotDistance`],
//! `max(0, 1 − dot)`.

use crate::simd::{dot, prefetch};
use crate::VectorSet;
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

/// One layer's adjacency: the neighbours of row `r` are `neigh[offsets[r]..offsets[r + 1]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Csr {
    pub(crate) offsets: Vec<u32>,
    pub(crate) neigh: Vec<u32>,
}

impl Csr {
    #[inline]
    fn of(&self, row: u32) -> &[u32] {
        let r = row as usize;
        match (self.offsets.get(r), self.offsets.get(r + 1)) {
            (Some(&s), Some(&e)) => self.neigh.get(s as usize..e as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Build from per-row lists given as `(row, list)` in any order; rows not given are empty.
    /// Every row must be `< n`.
    pub(crate) fn from_lists<'a>(n: usize, lists: impl Iterator<Item = (u32, &'a [u32])> + Clone) -> Self {
        let mut lens = vec![0u32; n + 1];
        for (r, l) in lists.clone() {
            lens[r as usize + 1] = l.len() as u32;
        }
        for i in 1..=n {
            lens[i] += lens[i - 1];
        }
        let offsets = lens;
        let mut neigh = vec![0u32; offsets[n] as usize];
        for (r, l) in lists {
            let s = offsets[r as usize] as usize;
            neigh[s..s + l.len()].copy_from_slice(l);
        }
        Csr { offsets, neigh }
    }
}

/// A flat HNSW graph over rows `0..n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FlatGraph {
    /// Number of rows.
    pub(crate) n: usize,
    /// `layers[l]`: adjacency on layer `l` (layer 0 first).
    pub(crate) layers: Vec<Csr>,
    /// Where every search starts (a row on the top layer).
    pub(crate) entry: u32,
}

struct Scratch {
    visited: Vec<u32>,
    stamp: u32,
    candidates: BinaryHeap<Reverse<Cand>>,
    best: BinaryHeap<Cand>,
    fresh: Vec<u32>,
}

impl Scratch {
    const fn new() -> Self {
        Scratch {
            visited: Vec::new(),
            stamp: 0,
            candidates: BinaryHeap::new(),
            best: BinaryHeap::new(),
            fresh: Vec::new(),
        }
    }

    /// Start a new query over `n` rows: a new stamp (so nothing counts as visited yet).
    fn begin(&mut self, n: usize) -> u32 {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.stamp = 1;
        }
        self.candidates.clear();
        self.best.clear();
        self.stamp
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

#[inline]
fn dist(vectors: &VectorSet, q: &[f32], row: u32) -> f32 {
    (1.0 - dot(q, vectors.get(row as usize))).max(0.0)
}

impl FlatGraph {
    /// Top-`k` rows as `(row, 1 − distance)`, best first (ties by row), with a beam of
    /// `max(ef, k)` candidates on layer 0. `vectors` must hold the `n` rows of the graph.
    pub(crate) fn search(&self, vectors: &VectorSet, q: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        self.search_live(vectors, q, k, ef, |_| true)
    }

    /// [`FlatGraph::search`] over the rows `live` accepts only: the others are still walked
    /// through (they keep the graph connected) but never enter the beam's results, so the answer
    /// holds up to `k` live rows whatever share of the graph is left out.
    pub(crate) fn search_live(
        &self,
        vectors: &VectorSet,
        q: &[f32],
        k: usize,
        ef: usize,
        live: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        if self.n == 0 || k == 0 || vectors.len() < self.n {
            return Vec::new();
        }
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => self.search_with(&mut s, vectors, q, k, ef, &live),
            // Only reachable if a search ran inside a search on one thread; give it its own.
            Err(_) => self.search_with(&mut Scratch::new(), vectors, q, k, ef, &live),
        })
    }

    fn search_with(
        &self,
        s: &mut Scratch,
        vectors: &VectorSet,
        q: &[f32],
        k: usize,
        ef: usize,
        live: &impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let ef = ef.max(k);
        // Greedy descent through the upper layers.
        let mut ep = self.entry;
        let mut ep_d = dist(vectors, q, ep);
        for layer in self.layers.iter().skip(1).rev() {
            loop {
                let mut moved = false;
                for &nb in layer.of(ep) {
                    let d = dist(vectors, q, nb);
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
        let stamp = s.begin(self.n);
        let Scratch { visited, candidates, best, fresh, .. } = s;
        let layer0 = &self.layers[0];
        visited[ep as usize] = stamp;
        candidates.push(Reverse(Cand(ep_d, ep)));
        if live(ep) {
            best.push(Cand(ep_d, ep));
        }
        while let Some(Reverse(Cand(d, c))) = candidates.pop() {
            if best.len() >= ef && d > best.peek().map_or(f32::INFINITY, |b| b.0) {
                break;
            }
            fresh.clear();
            for &nb in layer0.of(c) {
                let slot = &mut visited[nb as usize];
                if *slot != stamp {
                    *slot = stamp;
                    fresh.push(nb);
                    prefetch(vectors.get(nb as usize));
                }
            }
            for &nb in fresh.iter() {
                let dn = dist(vectors, q, nb);
                if best.len() < ef || dn < best.peek().map_or(f32::INFINITY, |b| b.0) {
                    candidates.push(Reverse(Cand(dn, nb)));
                    if live(nb) {
                        best.push(Cand(dn, nb));
                        if best.len() > ef {
                            best.pop();
                        }
                    }
                }
            }
        }
        let mut hits: Vec<(u32, f32)> = Vec::with_capacity(best.len());
        hits.extend(best.drain().map(|c| (c.1, 1.0 - c.0)));
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(k);
        hits
    }
}
