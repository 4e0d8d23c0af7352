//! Operator pins: `ragsnap pin ID --reason TEXT` keeps a snapshot from GC under the tag
//! [`operator_tag`]`(ID)`; `ragsnap unpin ID` removes every pin of the snapshot. The reason is
//! recorded in the audit log ([`crate::audit`]).

use crate::{Result, Store};

/// The pin tag `ragsnap pin` uses for snapshot `id`.
pub fn operator_tag(id: &str) -> String {
    format!("operator:{id}")
}

impl Store {
    /// Pin snapshot `id` under [`operator_tag`] (writer only). Returns whether it was new.
    pub fn pin_snapshot(&self, id: &str) -> Result<bool> {
        let tag = operator_tag(id);
        let existed = self.catalog().pins()?.iter().any(|(t, _)| *t == tag);
        self.pin(&tag, id)?;
        Ok(!existed)
    }

    /// Remove every pin of snapshot `id` (writer only); returns the tags removed.
    pub fn unpin_snapshot(&self, id: &str) -> Result<Vec<String>> {
        self.require_writer()?;
        self.catalog().get(id)?;
        let mut removed = Vec::new();
        for (tag, pinned) in self.catalog().pins()? {
            if pinned == id && self.catalog().unpin(&tag)? {
                removed.push(tag);
            }
        }
        Ok(removed)
    }
}
