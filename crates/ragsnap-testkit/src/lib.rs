//! Helpers shared by ragsnap's test suites: the repository's folders and a plain recursive copy,
//! so that each suite works on its own copy of a fixture or a frozen store. Test code only: it
//! panics instead of returning errors.

use std::path::{Path, PathBuf};

/// The repository root (the folder holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The bundled fixture site (`fixtures/site`).
pub fn fixture_site() -> PathBuf {
    repo_root().join("fixtures/site")
}

/// Copy the folder tree `from` to `to` (created when missing): folders are walked, everything
/// else is copied as a file.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for e in entries {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap_or_else(|err| panic!("copy {}: {err}", e.path().display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_copied_with_its_nested_files() {
        let dir = std::env::temp_dir().join(format!("ragsnap-testkit-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/c.txt"), b"deep").unwrap();
        std::fs::write(src.join("top.txt"), b"top").unwrap();
        copy_tree(&src, &dir.join("dst"));
        assert_eq!(std::fs::read(dir.join("dst/a/b/c.txt")).unwrap(), b"deep");
        assert_eq!(std::fs::read(dir.join("dst/top.txt")).unwrap(), b"top");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(fixture_site().is_dir(), "{}", fixture_site().display());
    }
}
