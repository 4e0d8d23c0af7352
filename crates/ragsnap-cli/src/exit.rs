//! Exit codes, in one place: every typed error and every non-error outcome maps to one
//! [`ExitKind`], which names the code and the `kind` of a JSON error.

use ragsnap::store::StoreError;
use ragsnap::Error;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// 0: done.
    Ok,
    /// 1: an error.
    Error,
    /// 2: a usage error (bad flag or value, `--store` not a store, HEAD~N past the history).
    Usage,
    /// 3: refused (no confident match, embedding mismatch or drift, refused head move).
    Refused,
    /// 4: verification failed, corrupted snapshot or damaged catalog.
    Verification,
    /// 5: the store is locked by another writer.
    Locked,
    /// 6: the rebuild was rejected by a gate (head unchanged).
    Rejected,
    /// 130: interrupted by SIGINT or SIGTERM.
    Interrupted,
}

impl ExitKind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Ok => 0,
            ExitKind::Error => 1,
            ExitKind::Usage => 2,
            ExitKind::Refused => 3,
            ExitKind::Verification => 4,
            ExitKind::Locked => 5,
            ExitKind::Rejected => 6,
            ExitKind::Interrupted => 130,
        }
    }

    /// The `kind` of a JSON error.
    pub fn name(self) -> &'static str {
        match self {
            ExitKind::Ok => "ok",
            ExitKind::Error => "error",
            ExitKind::Usage => "usage",
            ExitKind::Refused => "refused",
            ExitKind::Verification => "verification_failed",
            ExitKind::Locked => "locked",
            ExitKind::Rejected => "rejected",
            ExitKind::Interrupted => "interrupted",
        }
    }

    /// The audit log's `outcome` for a command that ended this way.
    pub fn outcome(self) -> &'static str {
        self.name()
    }

    /// The kind a command that reports a bare process exit code ended with (the `serve`,
    /// `publish` and `pull` commands of `ragsnap-serve`); an unknown code is an error.
    pub fn from_code(code: u8) -> ExitKind {
        match code {
            0 => ExitKind::Ok,
            2 => ExitKind::Usage,
            3 => ExitKind::Refused,
            4 => ExitKind::Verification,
            5 => ExitKind::Locked,
            6 => ExitKind::Rejected,
            130 => ExitKind::Interrupted,
            _ => ExitKind::Error,
        }
    }

    /// What an error means for the exit code: the first typed error in its chain decides.
    pub fn of(e: &anyhow::Error) -> ExitKind {
        for cause in e.chain() {
            if cause.downcast_ref::<UsageError>().is_some() {
                return ExitKind::Usage;
            }
            if let Some(err) = cause.downcast_ref::<Error>() {
                return match err {
                    Error::EmbeddingVersionMismatch { .. } | Error::EmbeddingDrift { .. } => ExitKind::Refused,
                    Error::Store(s) => store_kind(s),
                    Error::Cancelled => ExitKind::Interrupted,
                    Error::InvalidSetting { .. } | Error::Config { .. } => ExitKind::Usage,
                    _ => ExitKind::Error,
                };
            }
            if let Some(s) = cause.downcast_ref::<StoreError>() {
                return store_kind(s);
            }
        }
        ExitKind::Error
    }
}

fn store_kind(s: &StoreError) -> ExitKind {
    match s {
        StoreError::Locked { .. } => ExitKind::Locked,
        StoreError::Corrupt { .. }
        | StoreError::Malformed { .. }
        | StoreError::ManifestRefused { .. }
        | StoreError::CatalogDamaged { .. }
        | StoreError::Unreadable { .. } => ExitKind::Verification,
        StoreError::NotAStore { .. }
        | StoreError::NoStore { .. }
        | StoreError::BadReference { .. }
        | StoreError::BeyondHistory { .. } => ExitKind::Usage,
        StoreError::Refused(_) => ExitKind::Refused,
        _ => ExitKind::Error,
    }
}

/// A usage error found after parsing (a combination of flags, a missing input): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Whether `e` is a write to a closed stdout (the reader of a pipe exited, as `head` does).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
