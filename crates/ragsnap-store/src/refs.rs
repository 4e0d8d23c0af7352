//! Snapshot references an operator can type: a snapshot id, `HEAD` (or `head`), and `HEAD~N`,
//! the N-th ancestor of head along the `parent_id` chain (each build records the head it was
//! built on, as a git commit records its parent). `HEAD~` is `HEAD~1`.

use crate::{Result, Store, StoreError};

/// A parsed snapshot reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotRef {
    /// A snapshot id, used as given.
    Id(String),
    /// Head's N-th ancestor (0 = head).
    Head(u64),
}

impl SnapshotRef {
    /// Parse `HEAD`, `head`, `HEAD~`, `HEAD~N`; anything else is an id.
    pub fn parse(spec: &str) -> Result<Self> {
        let rest = spec.strip_prefix("HEAD").or_else(|| spec.strip_prefix("head"));
        let Some(rest) = rest else { return Ok(SnapshotRef::Id(spec.to_string())) };
        if rest.is_empty() {
            return Ok(SnapshotRef::Head(0));
        }
        let Some(n) = rest.strip_prefix('~') else { return Ok(SnapshotRef::Id(spec.to_string())) };
        if n.is_empty() {
            return Ok(SnapshotRef::Head(1));
        }
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::BadReference {
                spec: spec.to_string(),
                message: "after `HEAD~` comes a number of steps, e.g. HEAD~2".into(),
            });
        }
        n.parse::<u64>().map(SnapshotRef::Head).map_err(|_| StoreError::BadReference {
            spec: spec.to_string(),
            message: "the number of steps is too large".into(),
        })
    }
}

impl Store {
    /// The snapshot id `spec` names (see the module docs). An id must be in the catalog;
    /// `HEAD~N` past the first build is [`StoreError::BeyondHistory`].
    pub fn resolve(&self, spec: &str) -> Result<String> {
        match SnapshotRef::parse(spec)? {
            SnapshotRef::Id(id) => {
                self.catalog().get(&id)?;
                Ok(id)
            }
            SnapshotRef::Head(steps) => {
                let all = self.catalog().list()?;
                let mut id = self.catalog().head_id()?.ok_or(StoreError::NoHead)?;
                for taken in 0..steps {
                    // A chain is never longer than the catalog; a longer walk is a loop in a
                    // damaged catalog, and ends here rather than after `steps` rounds.
                    let parent = all
                        .iter()
                        .find(|s| s.id == id)
                        .and_then(|s| s.parent_id.clone())
                        .filter(|_| usize::try_from(taken).is_ok_and(|t| t < all.len()));
                    match parent {
                        Some(p) => id = p,
                        None => {
                            return Err(StoreError::BeyondHistory {
                                spec: spec.to_string(),
                                available: taken,
                                oldest: id,
                            })
                        }
                    }
                }
                Ok(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SnapshotRef;

    #[test]
    fn references_parse_like_git_and_ids_pass_through() {
        assert_eq!(SnapshotRef::parse("HEAD").unwrap(), SnapshotRef::Head(0));
        assert_eq!(SnapshotRef::parse("head").unwrap(), SnapshotRef::Head(0));
        assert_eq!(SnapshotRef::parse("HEAD~").unwrap(), SnapshotRef::Head(1));
        assert_eq!(SnapshotRef::parse("head~12").unwrap(), SnapshotRef::Head(12));
        assert_eq!(SnapshotRef::parse("20260101T000000Z-ab").unwrap(), SnapshotRef::Id("20260101T000000Z-ab".into()));
        assert_eq!(SnapshotRef::parse("HEADLESS").unwrap(), SnapshotRef::Id("HEADLESS".into()));
        assert!(SnapshotRef::parse("HEAD~x").is_err());
        assert!(SnapshotRef::parse("HEAD~-1").is_err());
        assert!(SnapshotRef::parse("HEAD~99999999999999999999999").is_err());
    }
}
