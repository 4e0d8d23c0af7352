//! Stage 0 of the rebuild, model check: the configured model's fingerprint is compared with the
//! one the build must keep (`[gates] pin_fingerprint`, else head's) before anything is read or
//! embedded, so a model change is refused in the time it takes to open the store rather than
//! after the whole corpus was embedded again.

use super::HeadInfo;
use crate::config::Config;
use crate::{Embedder, Error, Result};

/// Which model this build uses and which one it had to keep.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelCheck {
    /// Fingerprint id of the embedder at hand.
    pub current: String,
    /// The fingerprint the build must have (pinned, else head's); `None` on a first build.
    pub required: Option<String>,
}

impl ModelCheck {
    /// Whether this build switches models (only reached with `--allow-model-change`).
    pub fn changed(&self) -> bool {
        self.required.as_ref().is_some_and(|r| *r != self.current)
    }
}

/// Refuse a model change not allowed by `allow_model_change` with
/// [`Error::EmbeddingVersionMismatch`] (the `ragsnap` binary exits 3).
pub(crate) fn check(
    config: &Config,
    head: Option<&HeadInfo>,
    embedder: &dyn Embedder,
    allow_model_change: bool,
) -> Result<ModelCheck> {
    let current = embedder.fingerprint().id();
    let required = config.gates.pin_fingerprint.clone().or_else(|| head.map(|h| h.manifest.fingerprint.id()));
    let check = ModelCheck { current, required };
    if check.changed() && !allow_model_change {
        let required = check.required.clone().unwrap_or_default();
        tracing::error!(
            required = %required,
            configured = %check.current,
            "the configured embedding model differs from the one this store's head was built with; \
             nothing was embedded; pass --allow-model-change to switch models (everything is then re-embedded)"
        );
        return Err(Error::EmbeddingVersionMismatch { index: required, embedder: check.current });
    }
    Ok(check)
}
