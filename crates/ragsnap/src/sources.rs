//! Finding and reading source documents: which files of a source folder are read, how they are
//! opened, and what URL each page gets.
//!
//! **Selection.** A source folder is walked with the `ignore` crate, symlinks never followed.
//! Patterns use gitignore syntax and are matched against the path relative to the source folder
//! (`guide/intro.html`):
//!
//! * `exclude` patterns leave files and folders out (a later `!pattern` takes an earlier match
//!   back, as in a `.gitignore`; a file inside an excluded folder cannot be taken back);
//! * when `include` is not empty, only files matching one of its patterns are read (a pattern
//!   naming a folder, such as `guide/`, includes everything below it);
//! * [`DEFAULT_EXCLUDES`] come before the user's excludes unless `default_excludes = false`:
//!   hidden files and folders, and the generator by-products that only repeat pages or carry no
//!   prose;
//! * `.gitignore` / `.ignore` files inside the source folder are **not** read unless
//!   `gitignore = true`: a documentation build output is not a git work tree, and a stray ignore
//!   file should not silently drop pages.
//!
//! **Entries that are not regular files** — symlinks (to files or folders), FIFOs, sockets and
//! devices — are reported as skipped with the reason, never followed or opened. A folder or file
//! that cannot be read is a per-path failure; the walk goes on.
//!
//! **Reading.** A listed file is opened with `O_NOFOLLOW | O_NONBLOCK` and checked on the opened
//! descriptor: it must still be a regular file, be the very file that was listed (same device
//! and inode), and be within the size limit; at most limit + 1 bytes are read. A file swapped for
//! a symlink, a FIFO or another file between listing and reading is therefore never read.
//!
//! **URLs.** A page's URL is the source's `url_prefix` (a prefix without a trailing slash is
//! taken as a folder) joined with the page's relative path, each segment percent-encoded by the
//! `url` crate; a `<link rel="canonical">` is resolved against that URL.

use crate::rebuild::{DocFailure, FailureKind};
use crate::{Error, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use url::Url;

/// Patterns excluded unless `[source] default_excludes = false`, with why.
///
/// * `.*`: hidden files and folders (editor and VCS state, build caches such as doctree
///   pickles, build-info stamps) — never pages;
/// * `_sources/`: the markup source of every page, copied next to the built HTML; indexing it
///   puts each page in the index twice, once without its rendering;
/// * `_static/`: theme assets (stylesheets, scripts, fonts, icons) — no prose;
/// * `_images/`: images copied by the generator — no text to index.
///
/// Other generator output (`_downloads/`, index and search pages) is left to the user's
/// patterns and to the sanitiser: it can hold real documents.
pub const DEFAULT_EXCLUDES: &[&str] = &[".*", "_sources/", "_static/", "_images/"];

/// `[source]`: which files of every source folder are read. Flags `--include` / `--exclude`
/// add to the lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSelection {
    /// Only files matching one of these gitignore-style patterns are read (empty: all files).
    pub include: Vec<String>,
    /// Files and folders matching these gitignore-style patterns are left out.
    pub exclude: Vec<String>,
    /// Apply [`DEFAULT_EXCLUDES`] before `exclude`.
    pub default_excludes: bool,
    /// Also honour `.gitignore` and `.ignore` files found inside the source folders.
    pub gitignore: bool,
}

impl Default for SourceSelection {
    fn default() -> Self {
        SourceSelection { include: Vec::new(), exclude: Vec::new(), default_excludes: true, gitignore: false }
    }
}

/// A compiled [`SourceSelection`].
#[derive(Clone, Debug)]
pub struct Selector {
    exclude: Gitignore,
    include: Option<Gitignore>,
    gitignore: bool,
}

fn compile(patterns: &[&str], what: &str) -> Result<Gitignore> {
    let mut b = GitignoreBuilder::new(".");
    for p in patterns {
        if p.trim().is_empty() {
            return Err(Error::Invalid(format!("{what} pattern {p:?} is empty")));
        }
        b.add_line(None, p).map_err(|e| Error::Invalid(format!("{what} pattern {p:?}: {e}")))?;
    }
    b.build().map_err(|e| Error::Invalid(format!("{what} patterns: {e}")))
}

/// Check one include or exclude pattern (for validating flags); the error names it.
pub fn check_pattern(pattern: &str) -> std::result::Result<(), String> {
    compile(&[pattern], "pattern").map(|_| ()).map_err(|e| e.to_string())
}

impl SourceSelection {
    /// Check every pattern and build the matcher; a bad pattern is [`Error::Invalid`] naming it.
    pub fn compile(&self) -> Result<Selector> {
        let mut ex: Vec<&str> = Vec::new();
        if self.default_excludes {
            ex.extend(DEFAULT_EXCLUDES);
        }
        ex.extend(self.exclude.iter().map(String::as_str));
        let exclude = compile(&ex, "[source] exclude")?;
        let include = if self.include.is_empty() {
            None
        } else {
            Some(compile(&self.include.iter().map(String::as_str).collect::<Vec<_>>(), "[source] include")?)
        };
        Ok(Selector { exclude, include, gitignore: self.gitignore })
    }
}

impl Selector {
    /// Whether the entry at `rel` (relative to its source folder, `/`-separated) is read. For a
    /// folder, `false` means nothing below it is read. Parents are assumed already admitted.
    pub fn admits(&self, rel: &str, is_dir: bool) -> bool {
        if rel.is_empty() {
            return true;
        }
        if matches!(self.exclude.matched(rel, is_dir), Match::Ignore(_)) {
            return false;
        }
        match (&self.include, is_dir) {
            (Some(inc), false) => matches!(inc.matched_path_or_any_parents(rel, false), Match::Ignore(_)),
            _ => true,
        }
    }
}

/// One regular file found by [`list_source`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedFile {
    /// Path relative to the source folder, `/`-separated.
    pub rel: String,
    /// Path to open.
    pub abs: PathBuf,
    /// Device of the file as listed.
    pub dev: u64,
    /// Inode of the file as listed.
    pub ino: u64,
}

/// What [`list_source`] found in one folder.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Regular files to read, sorted by `rel`.
    pub files: Vec<ListedFile>,
    /// Entries not read because of what they are (symlink, FIFO, socket, device, a name that
    /// is not UTF-8); `path` is relative to the source folder.
    pub skipped: Vec<DocFailure>,
    /// Folders or entries that could not be read (kind `io`).
    pub failed: Vec<DocFailure>,
    /// Files and folders left out by the selection (a folder counts once).
    pub excluded: usize,
}

fn rel_of(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let s = rel.to_str()?;
    Some(s.replace('\\', "/"))
}

fn error_path(e: &ignore::Error) -> Option<&Path> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => error_path(err),
        ignore::Error::Partial(v) => v.iter().find_map(error_path),
        ignore::Error::Loop { child, .. } => Some(child),
        _ => None,
    }
}

fn skip(path: &str, kind: FailureKind, error: String) -> DocFailure {
    DocFailure { path: path.to_string(), kind, error }
}

/// What kind of non-regular entry a file type is, with the reason text.
pub(crate) fn special_kind(ft: &std::fs::FileType) -> Option<(FailureKind, &'static str)> {
    if ft.is_symlink() {
        Some((FailureKind::Symlink, "symbolic link, not followed"))
    } else if ft.is_fifo() {
        Some((FailureKind::Fifo, "named pipe (FIFO), not a document"))
    } else if ft.is_socket() {
        Some((FailureKind::Socket, "socket, not a document"))
    } else if ft.is_block_device() || ft.is_char_device() {
        Some((FailureKind::Device, "device file, not a document"))
    } else if !ft.is_file() && !ft.is_dir() {
        Some((FailureKind::Special, "not a regular file"))
    } else {
        None
    }
}

/// Walk `dir` with `selector`. An unreadable folder or entry is recorded in
/// [`Listing::failed`] and the walk continues; only a `dir` that is not a folder is an error.
pub fn list_source(dir: &Path, selector: &Selector) -> Result<Listing> {
    let root_md =
        std::fs::metadata(dir).map_err(|e| Error::Invalid(format!("source {}: cannot read: {e}", dir.display())))?;
    if !root_md.is_dir() {
        return Err(Error::Invalid(format!("source {} is not a folder", dir.display())));
    }
    // The walker reads a root spelled `-` as standard input: spell that folder `./-`.
    let dir_buf;
    let dir = if dir == Path::new("-") {
        dir_buf = Path::new(".").join("-");
        dir_buf.as_path()
    } else {
        dir
    };
    let excluded = Arc::new(AtomicUsize::new(0));
    let mut walk = ignore::WalkBuilder::new(dir);
    walk.standard_filters(false)
        .follow_links(false)
        .git_ignore(selector.gitignore)
        .ignore(selector.gitignore)
        .require_git(false);
    {
        let selector = selector.clone();
        let excluded = excluded.clone();
        let root = dir.to_path_buf();
        walk.filter_entry(move |e| {
            if e.depth() == 0 {
                return true;
            }
            // A name that is not UTF-8 is admitted here and skipped with its reason below.
            let Some(rel) = rel_of(&root, e.path()) else { return true };
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            let ok = selector.admits(&rel, is_dir);
            if !ok {
                excluded.fetch_add(1, Ordering::Relaxed);
            }
            ok
        });
    }
    let mut out = Listing::default();
    for entry in walk.build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let rel = error_path(&e)
                    .map(|p| rel_of(dir, p).unwrap_or_else(|| p.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                let shown = if rel.is_empty() { dir.display().to_string() } else { rel.clone() };
                out.failed.push(skip(&rel, FailureKind::Io, format!("{shown}: cannot read: {}", io_message(&e))));
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let Some(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            continue;
        }
        let Some(rel) = rel_of(dir, entry.path()) else {
            let shown = entry.path().strip_prefix(dir).unwrap_or(entry.path()).to_string_lossy().into_owned();
            out.skipped.push(skip(&shown, FailureKind::Name, format!("{shown}: file name is not valid UTF-8")));
            continue;
        };
        if let Some((kind, why)) = special_kind(&ft) {
            out.skipped.push(skip(&rel, kind, format!("{rel}: {why}")));
            continue;
        }
        match entry.metadata() {
            Ok(md) => out.files.push(ListedFile { rel, abs: entry.into_path(), dev: md.dev(), ino: md.ino() }),
            Err(e) => out.failed.push(skip(&rel, FailureKind::Io, format!("{rel}: {}", io_message(&e)))),
        }
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.excluded = excluded.load(Ordering::Relaxed);
    Ok(out)
}

fn io_message(e: &ignore::Error) -> String {
    match e.io_error() {
        Some(io) => io.to_string(),
        None => e.to_string(),
    }
}

/// Size and modification time of a file as it was read.
pub type Stamp = (u64, SystemTime);

/// What reading one listed file gave.
#[derive(Debug)]
pub enum ReadOutcome {
    /// The bytes, with the file's size and modification time from the opened descriptor.
    Bytes(Vec<u8>, Stamp),
    /// Not a document any more (it became a symlink, FIFO, ...): reported as skipped.
    Skipped(DocFailure),
    /// Could not be read safely: reported as a failure.
    Failed(DocFailure),
}

/// Open `file` without following symlinks and without blocking on a FIFO, check the opened
/// descriptor (regular file, the listed device and inode, at most `max_bytes`), and read it.
/// `display` names the file in every message.
pub fn read_listed(file: &ListedFile, display: &str, max_bytes: u64) -> ReadOutcome {
    let fail = |kind: FailureKind, error: String| ReadOutcome::Failed(skip(display, kind, error));
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&file.abs)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return ReadOutcome::Skipped(skip(
                display,
                FailureKind::Symlink,
                format!("{display}: became a symbolic link after it was listed; not followed"),
            ))
        }
        Err(e) => return fail(FailureKind::Io, format!("{display}: {e}")),
    };
    let md = match f.metadata() {
        Ok(m) => m,
        Err(e) => return fail(FailureKind::Io, format!("{display}: {e}")),
    };
    if let Some((kind, why)) = special_kind(&md.file_type()) {
        return ReadOutcome::Skipped(skip(display, kind, format!("{display}: {why} (changed after it was listed)")));
    }
    if !md.is_file() {
        return ReadOutcome::Skipped(skip(display, FailureKind::Special, format!("{display}: not a regular file")));
    }
    if (md.dev(), md.ino()) != (file.dev, file.ino) {
        return fail(
            FailureKind::Changed,
            format!("{display}: replaced by another file after it was listed; not read (it is read next run)"),
        );
    }
    let too_large = |size: u64| {
        let e = ragsnap_chunk::IngestError::TooLarge { path: display.to_string(), size, limit: max_bytes };
        fail(FailureKind::TooLarge, e.to_string())
    };
    if md.len() > max_bytes {
        return too_large(md.len());
    }
    let mut bytes = Vec::with_capacity(md.len().min(max_bytes) as usize);
    if let Err(e) = (&mut f).take(max_bytes.saturating_add(1)).read_to_end(&mut bytes) {
        return fail(FailureKind::Io, format!("{display}: {e}"));
    }
    if bytes.len() as u64 > max_bytes {
        return too_large(bytes.len() as u64);
    }
    ReadOutcome::Bytes(bytes, (md.len(), md.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Size and modification time of `path` now, without following a symlink.
pub fn stamp_now(path: &Path) -> Option<Stamp> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Parse a URL prefix: an absolute URL that can have paths below it, without query or fragment.
/// The error says what is wrong with `value`.
pub fn parse_url_prefix(value: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("URL prefix {value:?} is not an absolute URL: {e}"))?;
    if url.cannot_be_a_base() {
        return Err(format!("URL prefix {value:?} cannot have paths below it"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("URL prefix {value:?} has a query or fragment; page paths cannot be joined to it"));
    }
    Ok(url)
}

/// `prefix` joined with `rel` (a `/`-separated relative path): a prefix without a trailing
/// slash is taken as a folder; every segment is percent-encoded (spaces, `?`, `#`, `%`,
/// non-ASCII).
pub fn page_url(prefix: &Url, rel: &str) -> Url {
    let mut url = prefix.clone();
    if let Ok(mut segs) = url.path_segments_mut() {
        segs.pop_if_empty();
        segs.extend(rel.split('/').filter(|s| !s.is_empty()));
    }
    url
}

/// The URL a document is served with: its canonical link when there is a usable one (an
/// absolute `http`/`https` URL, or a relative one resolved against the page URL), else the page
/// URL, else none.
pub fn document_url(prefix: Option<&Url>, rel: &str, canonical: Option<&str>) -> Option<String> {
    let page = prefix.map(|p| page_url(p, rel));
    let canonical = canonical.map(str::trim).filter(|c| !c.is_empty()).and_then(|c| match Url::parse(c) {
        Ok(u) => Some(u),
        Err(url::ParseError::RelativeUrlWithoutBase) => page.as_ref().and_then(|p| p.join(c).ok()),
        Err(_) => None,
    });
    let canonical = canonical
        .filter(|u| matches!(u.scheme(), "http" | "https") || page.as_ref().is_some_and(|p| p.scheme() == u.scheme()));
    canonical.or(page).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_are_encoded_and_prefixes_are_folders() {
        let with = parse_url_prefix("https://docs.example.com/v2/").unwrap();
        let without = parse_url_prefix("https://docs.example.com/v2").unwrap();
        for p in [&with, &without] {
            assert_eq!(
                page_url(p, "sub dir/ünï code.html").as_str(),
                "https://docs.example.com/v2/sub%20dir/%C3%BCn%C3%AF%20code.html"
            );
        }
        let host = parse_url_prefix("https://docs.example.com").unwrap();
        assert_eq!(page_url(&host, "a/b.html").as_str(), "https://docs.example.com/a/b.html");
        assert_eq!(page_url(&host, "q?x#y%z.html").as_str(), "https://docs.example.com/q%3Fx%23y%25z.html");
    }

    #[test]
    fn bad_prefixes_are_refused_with_the_value() {
        for bad in ["docs.example.com/v2", "", "mailto:a@b.c", "https://x/?a=1", "https://x/#top", "/v2/"] {
            let e = parse_url_prefix(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn canonical_links_resolve_against_the_page() {
        let p = parse_url_prefix("https://d.example/v2/").unwrap();
        assert_eq!(
            document_url(Some(&p), "guide/a.html", Some("../b.html")).as_deref(),
            Some("https://d.example/v2/b.html")
        );
        assert_eq!(
            document_url(Some(&p), "guide/a.html", Some("https://other.example/a")).as_deref(),
            Some("https://other.example/a")
        );
        assert_eq!(
            document_url(Some(&p), "guide/a.html", Some("javascript:alert(1)")).as_deref(),
            Some("https://d.example/v2/guide/a.html")
        );
        assert_eq!(document_url(None, "guide/a.html", Some("../b.html")), None);
        assert_eq!(document_url(None, "a.html", Some("https://x.example/a")).as_deref(), Some("https://x.example/a"));
        assert_eq!(document_url(None, "a.html", None), None);
    }

    #[test]
    fn selection_defaults_and_patterns() {
        let s = SourceSelection::default().compile().unwrap();
        assert!(!s.admits(".git", true));
        assert!(!s.admits("guide/.draft.html", false));
        assert!(!s.admits("_sources", true));
        assert!(!s.admits("api/_static", true));
        assert!(s.admits("_sources", false), "a file named like a by-product folder is still read");
        assert!(s.admits("guide/a.html", false));
        let s = SourceSelection {
            include: vec!["guide/".into(), "*.md".into()],
            exclude: vec!["*.txt".into(), "!keep.txt".into()],
            ..Default::default()
        }
        .compile()
        .unwrap();
        assert!(s.admits("guide/a.html", false));
        assert!(s.admits("notes/x.md", false));
        assert!(!s.admits("api/a.html", false));
        assert!(!s.admits("guide/n.txt", false));
        let s = SourceSelection { default_excludes: false, ..Default::default() }.compile().unwrap();
        assert!(s.admits(".hidden.html", false) && s.admits("_sources", true));
        let back = SourceSelection { exclude: vec!["!_static/".into()], ..Default::default() }.compile().unwrap();
        assert!(back.admits("_static", true), "a later !pattern takes a default back");
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = SourceSelection { exclude: vec!["a[".into()], ..Default::default() }.compile();
        assert!(e.is_ok() || e.unwrap_err().to_string().contains("a["));
        let e = SourceSelection { include: vec!["  ".into()], ..Default::default() }.compile().unwrap_err();
        assert!(e.to_string().contains("include pattern"), "{e}");
        let e = SourceSelection { include: vec!["**/{a".into()], ..Default::default() }.compile().unwrap_err();
        assert!(e.to_string().contains("{a"), "{e}");
    }
}
