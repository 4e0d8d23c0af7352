//! Which search structure a snapshot's vectors are searched with. Shared by the index crate
//! (which builds it), the store (whose manifest records it) and the reader (which loads it).

use serde::{Deserialize, Serialize};

/// Which search structure a snapshot uses. Serialised as `"exact"` / `"hnsw"` in manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexKind {
    /// Brute force over every vector.
    Exact,
    /// HNSW graph.
    Hnsw,
}

impl IndexKind {
    /// The name written in manifests and the catalog.
    pub const fn as_str(self) -> &'static str {
        match self {
            IndexKind::Exact => "exact",
            IndexKind::Hnsw => "hnsw",
        }
    }
}

impl std::fmt::Display for IndexKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for IndexKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_strings_manifests_have_always_held() {
        for (k, s) in [(IndexKind::Exact, "\"exact\""), (IndexKind::Hnsw, "\"hnsw\"")] {
            assert_eq!(serde_json::to_string(&k).unwrap(), s);
            assert_eq!(serde_json::from_str::<IndexKind>(s).unwrap(), k);
            assert_eq!(format!("\"{k}\""), s);
        }
        assert!(serde_json::from_str::<IndexKind>("\"ivf\"").is_err());
    }
}
