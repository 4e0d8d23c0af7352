#!/usr/bin/env python3
"""Read eval/corpora/sites.toml and build each site's page folder (standard library only).

    sites.py packages [NAME...]            the Debian packages, one a line
    sites.py materialise --cache DIR [NAME...]
                                           build DIR/<package>/sites/<name>/ from the unpacked
                                           package; print name, package, version, generator,
                                           folder and page count, tab-separated, one site a line

The page folder holds hard links (copies where the file system refuses links) to the pages the
site's subset rule selects, under their paths relative to the site's HTML root. A folder whose
recorded selection matches is left alone, so a second run does no work.
"""

import argparse
import fnmatch
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("sites.py: needs Python 3.11 or later (tomllib)")

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "sites.toml"
FIELDS = ("name", "package", "generator", "root", "include", "exclude", "every", "cap")


def load(path=MANIFEST):
    """The sites of the manifest, each checked for every field and a sane subset rule."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        sys.exit(f"sites.py: {path}: {e}")
    sites = data.get("site", [])
    if not sites:
        sys.exit(f"sites.py: {path}: no [[site]] entries")
    names = set()
    for s in sites:
        missing = [f for f in FIELDS if f not in s]
        if missing:
            sys.exit(f"sites.py: {path}: site {s.get('name', '?')!r} lacks {', '.join(missing)}")
        unknown = sorted(set(s) - set(FIELDS))
        if unknown:
            sys.exit(f"sites.py: {path}: site {s['name']!r} has unknown fields {', '.join(unknown)}")
        if s["name"] in names:
            sys.exit(f"sites.py: {path}: site {s['name']!r} twice")
        names.add(s["name"])
        for f in ("every", "cap"):
            if not isinstance(s[f], int) or isinstance(s[f], bool) or s[f] < 1:
                sys.exit(f"sites.py: {path}: site {s['name']!r}: {f} must be a whole number >= 1")
        if not s["include"]:
            sys.exit(f"sites.py: {path}: site {s['name']!r}: include is empty")
        for f in ("include", "exclude"):
            if not isinstance(s[f], list) or not all(isinstance(x, str) and x for x in s[f]):
                sys.exit(f"sites.py: {path}: site {s['name']!r}: {f} must be a list of patterns")
        for f in ("name", "package", "generator", "root"):
            if not isinstance(s[f], str) or not s[f]:
                sys.exit(f"sites.py: {path}: site {s['name']!r}: {f} must be a non-empty string")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s["name"]):
            sys.exit(f"sites.py: {path}: site name {s['name']!r}: letters, digits, '.', '_' and '-' only")
        if s["root"].startswith("/") or ".." in s["root"].split("/"):
            sys.exit(f"sites.py: {path}: site {s['name']!r}: root must be a path inside the package")
    return sites


def select(site, root):
    """Relative paths of the pages the subset rule keeps, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in filenames:
            p = Path(dirpath, f)
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if any(fnmatch.fnmatchcase(rel, pat) for pat in site["include"]) and not any(
                fnmatch.fnmatchcase(rel, pat) for pat in site["exclude"]
            ):
                found.append(rel)
    found.sort()
    return found[:: site["every"]][: site["cap"]]


def version_of(cache, package):
    v = Path(cache, package, "VERSION")
    return v.read_text().strip() if v.is_file() else "?"


def materialise(cache, site):
    """Build the site's page folder; return (folder, pages)."""
    pkg_dir = Path(cache, site["package"])
    root = pkg_dir / site["root"]
    if not root.is_dir():
        sys.exit(
            f"sites.py: {site['name']}: {root} is missing; is {site['package']} unpacked? "
            f"run scripts/fetch_corpora.sh {site['name']}"
        )
    pages = select(site, root)
    if not pages:
        sys.exit(f"sites.py: {site['name']}: the subset rule selects no page under {root}")
    folder = pkg_dir / "sites" / site["name"]
    stamp = pkg_dir / "sites" / f".{site['name']}.selection"
    digest = hashlib.sha256(("\n".join(pages) + "\n" + version_of(cache, site["package"])).encode()).hexdigest()
    if folder.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        return folder, len(pages)
    if folder.exists():
        shutil.rmtree(folder)
    tmp = folder.with_name(f".{site['name']}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for rel in pages:
        dst = tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(root / rel, dst)
        except OSError:
            shutil.copyfile(root / rel, dst)
    tmp.rename(folder)
    stamp.write_text(digest + "\n")
    return folder, len(pages)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("packages")
    pk.add_argument("names", nargs="*")
    m = sub.add_parser("materialise")
    m.add_argument("--cache", required=True)
    m.add_argument("names", nargs="*")
    a = ap.parse_args()
    sites = load()
    unknown = set(a.names) - {s["name"] for s in sites}
    if unknown:
        ap.error(f"unknown site(s) {', '.join(sorted(unknown))}; known: {', '.join(s['name'] for s in sites)}")
    if a.cmd == "packages":
        seen = []
        for s in sites:
            if a.names and s["name"] not in a.names:
                continue
            if s["package"] not in seen:
                seen.append(s["package"])
        print("\n".join(seen))
        return
    for s in sites:
        if a.names and s["name"] not in a.names:
            continue
        folder, n = materialise(a.cache, s)
        print("\t".join([s["name"], s["package"], version_of(a.cache, s["package"]), s["generator"], str(folder), str(n)]))


if __name__ == "__main__":
    main()
