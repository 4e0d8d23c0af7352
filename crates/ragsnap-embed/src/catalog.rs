//! The model catalogue: the descriptors in the repository's `models/<name>/model.toml`, built
//! into the binary, so that a model is chosen by name (`--model`, `RAGSNAP_MODEL`,
//! `[runtime] model`). A catalogued model lives in `<cache>/models/<name>/` once fetched
//! (`make setup MODELS=...` or `ragsnap models fetch NAME`, both running
//! `scripts/fetch_models.py`).

use crate::runtime::cache_dir;
use crate::{EmbedError, ModelDescriptor, Result};
use std::path::{Path, PathBuf};

/// `(name, model.toml text)` of every catalogued model; the first is the default.
const ENTRIES: [(&str, &str); 3] = [
    ("minilm-l6-int8", include_str!("../../../models/minilm-l6-int8/model.toml")),
    ("minilm-l6-qint8", include_str!("../../../models/minilm-l6-qint8/model.toml")),
    ("paraphrase-minilm-l3", include_str!("../../../models/paraphrase-minilm-l3/model.toml")),
];

/// One catalogued model.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    /// Its descriptor, as the repository has it.
    pub descriptor: ModelDescriptor,
    /// Whether it is the model used when none is named.
    pub default: bool,
}

impl CatalogEntry {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.descriptor.name
    }

    /// Where the model lives in the cache at `cache`.
    pub fn dir_in(&self, cache: &Path) -> PathBuf {
        cache.join("models").join(self.name())
    }

    /// Whether the model is fetched into `cache`: its descriptor and both files are there and
    /// the files have the sizes the descriptor pins (the digests are checked at load).
    pub fn fetched_in(&self, cache: &Path) -> bool {
        let dir = self.dir_in(cache);
        let d = &self.descriptor;
        let size_ok =
            |p: PathBuf, want: u64| std::fs::metadata(p).is_ok_and(|m| m.is_file() && (want == 0 || m.len() == want));
        dir.join(ModelDescriptor::FILE_NAME).is_file()
            && size_ok(d.model_path(&dir), d.expected.model_bytes)
            && size_ok(d.tokenizer_path(&dir), 0)
    }
}

/// Every catalogued model, the default first.
pub fn catalog() -> Vec<CatalogEntry> {
    ENTRIES
        .iter()
        .enumerate()
        .map(|(i, (name, text))| {
            let path = Path::new("models").join(name).join(ModelDescriptor::FILE_NAME);
            let descriptor = ModelDescriptor::parse(text, &path)
                .unwrap_or_else(|e| panic!("catalogue descriptor {}: {e}", path.display()));
            assert_eq!(descriptor.name, *name, "catalogue entry {name} names itself {}", descriptor.name);
            CatalogEntry { descriptor, default: i == 0 }
        })
        .collect()
}

/// The names in the catalogue, comma-separated (for messages).
pub fn known_names() -> String {
    ENTRIES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// The catalogue entry called `name`; an unknown name is [`EmbedError::UnknownModel`] listing
/// the known ones.
pub fn lookup(name: &str) -> Result<CatalogEntry> {
    catalog()
        .into_iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| EmbedError::UnknownModel { name: name.to_string(), known: known_names() })
}

/// The folder of catalogued model `name` in the `make setup` cache. Unknown names are
/// [`EmbedError::UnknownModel`]; a model that is not fetched is [`EmbedError::Missing`] naming
/// `ragsnap models fetch`.
pub fn model_dir(name: &str) -> Result<PathBuf> {
    let entry = lookup(name)?;
    let Some(cache) = cache_dir() else {
        return Err(EmbedError::Missing {
            what: "model cache",
            path: Path::new(".cache/runtime/models").join(name),
            hint: "RAGSNAP_CACHE (or run `ragsnap models fetch NAME`)",
        });
    };
    let dir = entry.dir_in(&cache);
    if !dir.join(ModelDescriptor::FILE_NAME).is_file() {
        return Err(EmbedError::NotFetched { name: name.to_string(), path: dir });
    }
    // A model chosen by name runs as the catalogue describes it (its pins included): a copy in
    // the cache that says otherwise is stale or was edited.
    let cached = ModelDescriptor::load(&dir)?;
    if cached != entry.descriptor {
        return Err(EmbedError::Descriptor {
            path: dir.join(ModelDescriptor::FILE_NAME),
            message: format!(
                "differs from the catalogue's descriptor of {name:?}: run `ragsnap models fetch {name}` \
                 (or use --model-dir for a folder of one's own)"
            ),
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_names_are_unique_with_the_default_first() {
        let all = catalog();
        assert_eq!(all[0].name(), crate::runtime::DEFAULT_MODEL);
        assert!(all[0].default && all[1..].iter().all(|e| !e.default));
        let mut names: Vec<&str> = all.iter().map(CatalogEntry::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for e in &all {
            let x = &e.descriptor.expected;
            assert!(
                !x.model_sha256.is_empty() && !x.tokenizer_sha256.is_empty() && x.model_bytes > 0,
                "{}: every catalogued file is pinned",
                e.name()
            );
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = lookup("no-such-model").unwrap_err().to_string();
        assert!(err.contains("no-such-model") && err.contains("minilm-l6-int8"), "{err}");
    }
}
