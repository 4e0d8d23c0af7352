//! One function per command, grouped by what they touch: [`rebuild`], [`query`], [`inspect`]
//! (snapshots, show, diff, history), [`head`] (rollback, promote, pin, unpin), [`maintain`]
//! (verify, gc, repair, cache) and [`chunk`].

pub mod chunk;
pub mod head;
pub mod inspect;
pub mod maintain;
pub mod models;
pub mod query;
pub mod rebuild;

use crate::args::Cli;
use crate::exit::{ExitKind, UsageError};
use anyhow::Result;
use ragsnap::store::audit::{self, AuditEntry};
use ragsnap::store::StoreError;
use ragsnap::{Config, Store};
use std::path::{Path, PathBuf};

/// What every command gets: the settings (flag > env > file > default), the store folder and
/// the output switches.
pub struct Ctx {
    pub config: Config,
    pub store_path: PathBuf,
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
}

impl Ctx {
    /// Settings from the config file and the environment ([`Config::resolve`]), then the flags.
    pub fn new(cli: &Cli) -> Result<Self> {
        let mut config = Config::resolve(cli.config.as_deref())?;
        if let Some(p) = &cli.ort_lib {
            config.runtime.ort_lib = Some(p.clone());
        }
        if let Some(p) = &cli.model_dir {
            config.runtime.model_dir = Some(p.clone());
            config.runtime.model = None;
        }
        if let Some(name) = &cli.model {
            config.runtime.model = Some(name.clone());
            config.runtime.model_dir = None;
        }
        config.runtime.validate()?;
        let store_path = config.store_path(cli.store.as_deref());
        Ok(Ctx { config, store_path, json: cli.json, quiet: cli.quiet, verbose: cli.verbose })
    }

    /// Record a finished writer command in the store's audit log. A failure to record is a
    /// warning: the command itself is done.
    pub fn audit(&self, command: &str, snapshot: Option<&str>, outcome: &str, detail: impl Into<String>) {
        let entry = AuditEntry::now(command, snapshot, outcome, detail);
        if let Err(e) = audit::append(&self.store_path, &entry) {
            tracing::warn!("could not record {command} in the audit log: {e}");
        }
    }
}

/// Record a writer command that failed. Not when the store is missing, is not a store, or its
/// catalog is damaged: nothing is written into a catalog that `repair` must rebuild.
pub fn audit_failure(store: Option<&Path>, config: Option<&Path>, command: &str, kind: ExitKind, message: &str) {
    if matches!(kind, ExitKind::Usage | ExitKind::Verification) {
        return;
    }
    let Ok(cfg) = Config::resolve(config) else { return };
    let root = cfg.store_path(store);
    let entry = AuditEntry::now(command, None, kind.outcome(), message);
    if let Err(e) = audit::append(&root, &entry) {
        tracing::debug!("failure of {command} not recorded in the audit log: {e}");
    }
}

/// Open the store for writing with the library's load check. Only `rebuild` creates a store.
pub fn open_writer(path: &Path) -> Result<Store> {
    if ragsnap::store::layout::classify(path)? == ragsnap::store::layout::RootState::Fresh {
        return Err(StoreError::NoStore { path: path.to_path_buf() }.into());
    }
    Ok(ragsnap::open_store_writer(path)?)
}

/// A usage error (exit 2) found after parsing.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// `ragsnap completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitKind> {
    use clap::CommandFactory;
    use std::io::Write;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ragsnap", &mut buf);
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    Ok(ExitKind::Ok)
}

/// ` (2 symlink, 1 unsupported)`: skipped entries counted by kind; empty when none.
pub fn skip_reasons(skipped: &[ragsnap::rebuild::DocFailure]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in skipped {
        *by.entry(f.kind.as_str()).or_default() += 1;
    }
    if by.is_empty() {
        return String::new();
    }
    format!(" ({})", by.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "))
}
