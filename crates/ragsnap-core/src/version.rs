//! [`FormatVersion`]: the snapshot format version this build writes and the oldest it reads.

use serde::{Deserialize, Serialize};

/// An on-disk format version number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FormatVersion(pub u32);

impl FormatVersion {
    /// Version of the snapshot format this build writes.
    pub const CURRENT: FormatVersion = FormatVersion(1);
    /// Oldest snapshot format this build can still read.
    pub const OLDEST_READABLE: FormatVersion = FormatVersion(1);

    /// Whether this build can read a snapshot written with `self`.
    pub fn is_readable(self) -> bool {
        (Self::OLDEST_READABLE..=Self::CURRENT).contains(&self)
    }
}
