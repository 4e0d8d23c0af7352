//! The id map of an updated graph: which row of the snapshot each graph point answers for, and
//! which points are deleted (kept in the graph to hold it together, never returned).
//!
//! A graph built from scratch has no map: point `i` is row `i`. A graph updated in place keeps
//! the points of the graph it grew from (rows that left are deleted, rows that stayed keep their
//! point) and appends one point per new row, so its points and the snapshot's rows differ in
//! number and order; [`IdMap`] says how they line up.
//!
//! Payload (little-endian): `u64 points | u64 rows | points × u32 row`, where row
//! `0xffff_ffff` marks a deleted point. Every row `0..rows` appears exactly once.

use crate::{IndexError, Result, VectorSet};
use std::collections::HashMap;

/// Graph point → row of the snapshot, or deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    rows: Vec<u32>,
    live: usize,
}

impl IdMap {
    /// The row value of a deleted point.
    pub const DELETED: u32 = u32::MAX;

    /// A map of `rows.len()` points onto `live_rows` rows: every row must appear exactly once,
    /// every other point must be [`IdMap::DELETED`].
    pub fn new(rows: Vec<u32>, live_rows: usize) -> Result<Self> {
        let bad = |m: String| Err(IndexError::Graph(format!("id map: {m}")));
        if live_rows > rows.len() || live_rows >= Self::DELETED as usize {
            return bad(format!("{live_rows} rows cannot be held by {} graph points", rows.len()));
        }
        let mut seen = vec![false; live_rows];
        for (point, &row) in rows.iter().enumerate() {
            if row == Self::DELETED {
                continue;
            }
            match seen.get_mut(row as usize) {
                None => return bad(format!("point {point} maps to row {row}, the snapshot has {live_rows}")),
                Some(s) if *s => return bad(format!("row {row} is mapped by two points")),
                Some(s) => *s = true,
            }
        }
        if let Some(row) = seen.iter().position(|s| !s) {
            return bad(format!("row {row} has no graph point"));
        }
        Ok(IdMap { rows, live: live_rows })
    }

    /// Number of graph points (live and deleted).
    pub fn points(&self) -> usize {
        self.rows.len()
    }

    /// Number of live points (= rows of the snapshot).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Number of deleted points.
    pub fn deleted(&self) -> usize {
        self.rows.len() - self.live
    }

    /// Deleted points as a share of all points (0 for an empty map).
    pub fn deleted_share(&self) -> f64 {
        if self.rows.is_empty() {
            0.0
        } else {
            self.deleted() as f64 / self.rows.len() as f64
        }
    }

    /// The row point `point` answers for (`None`: deleted or out of range).
    #[inline]
    pub fn row(&self, point: u32) -> Option<u32> {
        self.rows.get(point as usize).copied().filter(|&r| r != Self::DELETED)
    }

    /// The payload of the snapshot artifact.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 4 * self.rows.len());
        out.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.live as u64).to_le_bytes());
        for r in &self.rows {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out
    }

    /// Parse a payload written by [`IdMap::to_bytes`] for a snapshot of `live_rows` rows.
    pub fn from_bytes(bytes: &[u8], live_rows: usize) -> Result<Self> {
        let bad = |m: String| IndexError::Graph(format!("id map: {m}"));
        if bytes.len() < 16 {
            return Err(bad(format!("{} bytes is shorter than the 16-byte header", bytes.len())));
        }
        let points = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let rows = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        if rows != live_rows as u64 {
            return Err(bad(format!("maps {rows} rows, the snapshot has {live_rows}")));
        }
        let body = &bytes[16..];
        if points.checked_mul(4) != Some(body.len() as u64) {
            return Err(bad(format!("{} bytes after the header for {points} points", body.len())));
        }
        let map: Vec<u32> = body.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        IdMap::new(map, live_rows)
    }
}

/// How a graph over `graph_vectors` (points in order, deleted ones as per `head_map`) becomes a
/// graph over `rows`: which points keep serving a row, which rows need a new point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdatePlan {
    /// The map of the updated graph (its points: the old ones, then one per entry of `insert`).
    pub map: IdMap,
    /// Rows to insert as new points, in point order (point `old points + i` is `insert[i]`).
    pub insert: Vec<u32>,
    /// Points of the old graph that were live and are deleted by this update.
    pub newly_deleted: usize,
}

fn bits_key(v: &[f32]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for x in v {
        x.to_bits().hash(&mut h);
    }
    h.finish()
}

/// Plan an update: a row keeps an old live point whose vector is bit for bit its own (each
/// point serves at most one row); every other row gets a new point; old points no row kept are
/// deleted. `head_map` is the old graph's map (`None`: point `i` is row `i`, all live).
pub fn plan_update(graph_vectors: &VectorSet, head_map: Option<&IdMap>, rows: &VectorSet) -> Result<UpdatePlan> {
    if graph_vectors.dims() != rows.dims() {
        return Err(IndexError::Vectors(format!(
            "the graph holds {}-dim vectors, the new rows are {}-dim",
            graph_vectors.dims(),
            rows.dims()
        )));
    }
    let old_points = graph_vectors.len();
    if head_map.is_some_and(|m| m.points() != old_points) {
        return Err(IndexError::Graph("id map and graph disagree on the number of points".into()));
    }
    let live = |p: usize| head_map.is_none_or(|m| m.row(p as u32).is_some());
    let mut by_bits: HashMap<u64, Vec<u32>> = HashMap::new();
    for p in (0..old_points).rev().filter(|&p| live(p)) {
        by_bits.entry(bits_key(graph_vectors.get(p))).or_default().push(p as u32);
    }
    let mut map = vec![IdMap::DELETED; old_points];
    let mut insert = Vec::new();
    for r in 0..rows.len() {
        let v = rows.get(r);
        let found = by_bits.get_mut(&bits_key(v)).and_then(|cands| {
            let i = cands.iter().rposition(|&p| graph_vectors.get(p as usize) == v)?;
            Some(cands.remove(i))
        });
        match found {
            Some(p) => map[p as usize] = r as u32,
            None => insert.push(r as u32),
        }
    }
    let newly_deleted = (0..old_points).filter(|&p| live(p) && map[p] == IdMap::DELETED).count();
    map.extend(insert.iter().copied());
    Ok(UpdatePlan { map: IdMap::new(map, rows.len())?, insert, newly_deleted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_round_trip_and_bad_maps_are_refused() {
        let m = IdMap::new(vec![2, IdMap::DELETED, 0, 1], 3).unwrap();
        assert_eq!((m.points(), m.live(), m.deleted()), (4, 3, 1));
        assert_eq!(m.row(1), None);
        assert_eq!(m.row(0), Some(2));
        assert_eq!(IdMap::from_bytes(&m.to_bytes(), 3).unwrap(), m);
        assert!(IdMap::from_bytes(&m.to_bytes(), 4).is_err(), "row count must match the snapshot");
        assert!(IdMap::new(vec![0, 0], 1).is_err(), "a row twice");
        assert!(IdMap::new(vec![0, IdMap::DELETED], 2).is_err(), "a row missing");
        assert!(IdMap::new(vec![5], 1).is_err(), "a row out of range");
        let mut b = m.to_bytes();
        b.pop();
        assert!(IdMap::from_bytes(&b, 3).is_err(), "truncated");
    }

    #[test]
    fn a_plan_keeps_equal_vectors_and_inserts_the_rest() {
        let old = VectorSet::new(1, vec![1.0, 2.0, 3.0, 2.0]).unwrap();
        let new = VectorSet::new(1, vec![2.0, 4.0, 2.0, 1.0]).unwrap();
        let plan = plan_update(&old, None, &new).unwrap();
        assert_eq!(plan.insert, vec![1]);
        assert_eq!(plan.newly_deleted, 1, "the 3.0 point");
        assert_eq!(plan.map.row(2), None);
        assert_eq!(plan.map.row(4), Some(1));
        for p in 0..plan.map.points() as u32 {
            if let Some(r) = plan.map.row(p) {
                let v = if (p as usize) < old.len() { old.get(p as usize) } else { new.get(r as usize) };
                assert_eq!(v, new.get(r as usize));
            }
        }
        // A second update never revives a deleted point, even for an equal vector.
        let again = VectorSet::new(1, vec![3.0]).unwrap();
        let plan2 =
            plan_update(&VectorSet::new(1, vec![1.0, 2.0, 3.0, 2.0, 4.0]).unwrap(), Some(&plan.map), &again).unwrap();
        assert_eq!(plan2.insert, vec![0]);
        assert_eq!(plan2.newly_deleted, 4);
    }
}
