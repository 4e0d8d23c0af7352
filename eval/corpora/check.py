#!/usr/bin/env python3
"""Measure how much site template a chunker let through, per documentation site.

Reads JSON Lines, one document a line, as `ragsnap chunk --source DIR --json` prints them:

    {"source": "a/b.html", "url": "https://..." | null, "title": "..." | null, "hub": false,
     "chunks": [{"text": "...", "header_path": ["A", "B"], "tokens": 12}, ...]}

and reports per site: pages, chunks, chunks per page; chunks containing template text and
chunks that are nothing but template (by the site's chrome list, eval/corpora/chrome/<site>.txt,
kept for measuring only); header-path anomalies (a repeated element, an admonition title as the
last element, the site's name); pages with body text that yield no chunks (a page of the
folder that is missing from the output counts as one without chunks); hub pages.

    check.py --site NAME [--root DIR] FILE.jsonl [FILE.jsonl ...]
    check.py --all DIR          (DIR holds <site>.jsonl, and optionally <site>.root naming the
                                 page folder, used to tell pages with body text from stubs)
    check.py --self-test

Options: --json (JSON instead of Markdown on stdout), --markdown-out FILE, --json-out FILE,
--chrome-dir DIR, --strict (exit 1 when a site misses a "done" threshold, listed in THRESHOLDS).
Exit codes: 0 ok, 1 bad input or (--strict) a threshold missed, 2 usage. Standard library only.
"""

import argparse
import html.parser
import json
import os
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Headings that are admonition labels, not sections (compared after normalising).
ADMONITIONS = {
    "note",
    "tip",
    "hint",
    "warning",
    "caution",
    "important",
    "attention",
    "danger",
    "error",
    "see also",
    "seealso",
    "deprecated",
    "example",
    "todo",
}

#: Characters that separate a page title from a site-wide affix.
SEPARATORS = (" — ", " – ", " -- ", " - ", " | ", " :: ", " · ", ": ", " (")

#: A page with at least this many words of prose (see PageInfo) has body text.
BODY_WORDS = 20

#: "Done" thresholds for --strict: (metric, test, description).
THRESHOLDS = (
    ("template_only_chunks", lambda s: s["template_only_chunks"] == 0, "no template-only chunk"),
    ("template_share", lambda s: s["template_share"] < 0.005, "template text in < 0.5% of chunks"),
    ("repeated_share", lambda s: s["repeated_share"] <= 0.01, "repeated header element in <= 1% of chunks"),
    ("admonition_chunks", lambda s: s["admonition_chunks"] == 0, "no admonition title as a section heading"),
    ("site_name_chunks", lambda s: s["site_name_chunks"] == 0, "no site name in header paths"),
    ("empty_pages", lambda s: s["empty_pages"] == 0, "every page with body text yields chunks"),
)

EXAMPLES = 5


class InputError(Exception):
    """Bad input: the message names the file (and line)."""


# ---------------------------------------------------------------------------------------------
# Inputs


def load_jsonl(path):
    """Documents of one JSON Lines file, each checked against the schema."""
    docs = []
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    with f:
        for n, raw in enumerate(f, 1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{where}: not UTF-8 (byte {e.start})") from None
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
            check_doc(d, where)
            docs.append(d)
    return docs


def check_doc(d, where):
    if not isinstance(d, dict):
        raise InputError(f"{where}: a line must be a JSON object")
    for key, types in (("source", (str,)), ("url", (str, type(None))), ("title", (str, type(None)))):
        if key not in d or not isinstance(d[key], types):
            raise InputError(f"{where}: field {key!r} missing or not a {' or '.join(t.__name__ for t in types)}")
    src = d["source"]
    if not src or src.startswith("/") or "\\" in src or ".." in src.split("/"):
        raise InputError(f"{where}: source {src!r} is not a relative path inside the site")
    if not isinstance(d.get("hub"), bool):
        raise InputError(f"{where}: field 'hub' missing or not true/false")
    if not isinstance(d.get("chunks"), list):
        raise InputError(f"{where}: field 'chunks' missing or not a list")
    for i, c in enumerate(d["chunks"]):
        if not isinstance(c, dict) or not isinstance(c.get("text"), str):
            raise InputError(f"{where}: chunk {i}: 'text' missing or not a string")
        hp = c.get("header_path")
        if not isinstance(hp, list) or not all(isinstance(h, str) for h in hp):
            raise InputError(f"{where}: chunk {i}: 'header_path' missing or not a list of strings")
        if not isinstance(c.get("tokens"), int) or isinstance(c.get("tokens"), bool) or c["tokens"] < 0:
            raise InputError(f"{where}: chunk {i}: 'tokens' missing or not a whole number")


def load_chrome(path):
    """Compiled patterns of a chrome list: one phrase a line (matched as written, spaces
    flexible, at word edges), `re:` for a regular expression, `#` for a comment."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(
            f"{path}: {e.strerror}; every site needs a chrome list (its navigation labels, footer"
            " lines, copyright lines, ...) for measuring; see eval/corpora/README.md"
        ) from None
    pats = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("re:"):
            try:
                pat = re.compile(line[3:].strip(), re.MULTILINE)
            except re.error as e:
                raise InputError(f"{path}:{n}: bad regular expression: {e}") from None
            if pat.search("") is not None:
                raise InputError(f"{path}:{n}: the regular expression matches empty text")
            pats.append(pat)
        else:
            body = r"\s+".join(re.escape(w) for w in line.split())
            left = r"(?<!\w)" if line[0].isalnum() or line[0] == "_" else ""
            right = r"(?!\w)" if line[-1].isalnum() or line[-1] == "_" else ""
            pats.append(re.compile(left + body + right))
    return pats


BLOCKS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "td", "th", "tr", "table", "pre", "blockquote",
    "section", "article", "main", "nav", "header", "footer", "aside", "h1", "h2", "h3", "h4", "h5",
    "h6", "br", "hr", "form", "figure", "figcaption", "caption", "body", "details", "summary",
}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
#: Class or role words that mark an admonition box (its heading is the box's label).
ADMONITION_BOX = re.compile(r"admonition|\bnote\b|\btip\b|warning|caution|important|danger|hint|attention|seealso|callout|alert")


class _Page(html.parser.HTMLParser):
    """Text blocks and headings of a page, outside <head>, <script>, <style> and <template>."""

    SKIP = {"head", "script", "style", "template", "noscript", "svg"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, is admonition box)
        self.skip = 0
        self.blocks = []
        self.current = []
        self.heading = None  # text parts of the open heading
        self.headings = []  # (text, inside an admonition box)

    def _flush(self):
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(text)
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        if tag in BLOCKS:
            self._flush()
        if tag in VOID:
            return
        a = dict(attrs)
        box = tag == "aside" or bool(ADMONITION_BOX.search(f"{a.get('class') or ''} {a.get('role') or ''}".lower()))
        self.stack.append((tag, box))
        if tag in HEADINGS:
            self.heading = []

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        if tag in BLOCKS:
            self._flush()
        if tag in HEADINGS and self.heading is not None:
            in_box = any(box for _, box in self.stack)
            self.headings.append((" ".join("".join(self.heading).split()), in_box))
            self.heading = None
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self.skip:
            return
        self.current.append(data)
        if self.heading is not None:
            self.heading.append(data)


#: A page has body text when its blocks of at least PROSE_BLOCK words (chrome cut out) add up
#: to at least BODY_WORDS words: menus, link lists and redirect notes are made of short blocks.
PROSE_BLOCK = 8


class PageInfo:
    """What the checker needs from a page's HTML: prose words and genuine section headings."""

    def __init__(self, path, chrome):
        self.prose_words = 0
        self.headings = set()
        try:
            raw = Path(path).read_bytes()
        except OSError:
            self.readable = False
            return
        self.readable = True
        p = _Page()
        try:
            p.feed(raw.decode("utf-8", errors="replace"))
            p.close()
        except Exception:  # a page the parser gives up on counts as having no text
            return
        p._flush()
        for block in p.blocks:
            for pat in chrome:
                block = pat.sub(" ", block)
            n = len(re.findall(r"\w+", block))
            if n >= PROSE_BLOCK:
                self.prose_words += n
        self.headings = {normalise(t, None) for t, in_box in p.headings if not in_box}


def list_pages(root):
    """Regular files under `root` as `/`-separated relative paths: hidden entries and symlinks
    are left out, as ragsnap leaves them out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            p = Path(dirpath, f)
            if f.startswith(".") or p.is_symlink() or not p.is_file():
                continue
            out.append(p.relative_to(root).as_posix())
    return sorted(out)


# ---------------------------------------------------------------------------------------------
# Measures


def chunk_body(c):
    """A chunk's text without the header-path line the chunker puts first."""
    text, hp = c["text"], c["header_path"]
    if hp and "\n\n" in text:
        first, rest = text.split("\n\n", 1)
        if "\n" not in first and first.startswith(hp[0][:8]):
            return rest
    return text


def words_left(text):
    """Word count of Markdown text with link targets and markup removed."""
    text = re.sub(r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)", "]", text)
    text = re.sub(r"<https?://[^>]*>", " ", text)
    return len(re.findall(r"[^\W_]{2,}|\d", text))


def detect_affix(docs):
    """The title affix shared by most pages (the site's name), or None.

    Candidates are every title's suffixes that start at a separator, prefixes that end at one,
    and the whole title (a site that gives every page the same title); the winner is on at least
    half the titled pages (and at least 3), most pages first, then the longest."""
    titles = [d["title"] or next((c["header_path"][0] for c in d["chunks"] if c["header_path"]), "") for d in docs]
    titles = [t.strip() for t in titles if t and t.strip()]
    if len(titles) < 3:
        return None
    counts = {}
    for t in titles:
        cands = set()
        for sep in SEPARATORS:
            start = 0
            while (i := t.find(sep, start)) > 0:
                cands.add(("suffix", t[i:]))
                if sep != " (":
                    cands.add(("prefix", t[: i + len(sep)]))
                start = i + 1
        cands.add(("whole", t))
        for c in cands:
            counts[c] = counts.get(c, 0) + 1
    need = max(3, (len(titles) + 1) // 2)
    best = None
    for (kind, affix), n in counts.items():
        name = affix.strip(" —–-|:·(").rstrip(")").strip()
        if n < need or len(re.findall(r"\w", name)) < 3:
            continue
        key = (n, len(affix))
        if best is None or key > best[0]:
            best = (key, kind, affix, name)
    if best is None:
        return None
    return {"kind": best[1], "affix": best[2], "name": best[3], "pages": best[0][0], "titled_pages": len(titles)}


def has_site_name(element, affix):
    """Whether a header element carries the site's name: ends with the title suffix, starts
    with the title prefix, or is the name (or the shared title) itself."""
    e = squash(element)
    if e in (squash(affix["name"]), squash(affix["affix"])):
        return True
    if affix["kind"] == "suffix":
        return e.endswith(squash(affix["affix"]))
    if affix["kind"] == "prefix":
        return e.startswith(squash(affix["affix"]))
    return False


def squash(s):
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).strip().casefold()


NUMBERING = re.compile(r"^(?:(?i:chapter|part|appendix|section)\s+)?(?:\d+(?:\.\d+)*\.?|[A-Z]\.(?:\d+\.?)*)\s+")


def normalise(element, site_name):
    """A header element reduced for comparison: site name, numbering, markup and case removed."""
    s = unicodedata.normalize("NFKC", element)
    if site_name:
        s = re.sub(r"(?<!\w)" + re.escape(site_name) + r"(?!\w)", " ", s, flags=re.IGNORECASE)
    s = s.replace("¶", " ").strip()
    s = NUMBERING.sub("", s)
    s = re.sub(r"[^\w]+", " ", s).strip().casefold()
    return s


def measure(site, docs, chrome, root=None):
    """Every measure of one site, with up to EXAMPLES examples of each anomaly."""
    if not docs:
        raise InputError(f"site {site}: no documents (was the chunker pointed at the right folder?)")
    seen = set()
    for d in docs:
        if d["source"] in seen:
            raise InputError(f"site {site}: document {d['source']!r} appears twice")
        seen.add(d["source"])
        if root is not None and not Path(root, d["source"]).is_file():
            raise InputError(f"site {site}: page folder {root} has no {d['source']} (the wrong folder?)")
    # Pages of the folder the chunker did not print at all (a failed or skipped page) count as
    # pages without chunks: nothing may be lost silently.
    missing = [] if root is None else [rel for rel in list_pages(root) if rel not in seen]
    docs = list(docs) + [
        {"source": rel, "url": None, "title": None, "hub": False, "chunks": [], "missing": True} for rel in missing
    ]
    affix = detect_affix(docs)
    site_name = affix["name"] if affix else None
    m = {
        "site": site,
        "pages": len(docs) - len(missing),
        "pages_missing_from_output": len(missing),
        "chunks": 0,
        "template_chunks": 0,
        "template_only_chunks": 0,
        "repeated_chunks": 0,
        "admonition_chunks": 0,
        "admonition_words_as_real_sections": 0,
        "site_name_chunks": 0,
        "pages_without_chunks": 0,
        "empty_pages": 0,
        "body_text_known": root is not None,
        "hub_pages": 0,
        "site_affix": affix,
        "examples": {
            k: []
            for k in ("template_only", "template", "repeated", "admonition", "site_name", "empty_page", "missing_page", "hub")
        },
    }
    ex = m["examples"]

    def example(kind, item):
        if len(ex[kind]) < EXAMPLES:
            ex[kind].append(item)

    for d in docs:
        if d["hub"]:
            m["hub_pages"] += 1
            example("hub", d["source"])
        cached = []

        def page(d=d):
            """The page's HTML facts, read once and only when needed (None without a folder)."""
            if root is None:
                return None
            if not cached:
                cached.append(PageInfo(Path(root, d["source"]), chrome))
            return cached[0]

        if not d["chunks"]:
            m["pages_without_chunks"] += 1
            if d.get("missing"):
                example("missing_page", d["source"])
            # A hub page is left out of the index on purpose (its targets are indexed): not empty.
            if not d["hub"] and (page() is None or page().prose_words >= BODY_WORDS):
                m["empty_pages"] += 1
                example("empty_page", d["source"])
        for c in d["chunks"]:
            m["chunks"] += 1
            hp = c["header_path"]
            body = chunk_body(c)
            hits = [mt.group(0) for pat in chrome for mt in pat.finditer(body)]
            if hits:
                m["template_chunks"] += 1
                example("template", {"source": d["source"], "header_path": hp, "matched": sorted(set(hits))[:5]})
                rest = body
                for pat in chrome:
                    rest = pat.sub(" ", rest)
                if words_left(rest) < 3:
                    m["template_only_chunks"] += 1
                    example("template_only", {"source": d["source"], "header_path": hp, "text": body[:300]})
            normed = [n for n in (normalise(h, site_name) for h in hp) if n]
            if len(set(normed)) < len(normed):
                m["repeated_chunks"] += 1
                example("repeated", {"source": d["source"], "header_path": hp})
            last = normalise(hp[-1], None) if hp else ""
            if last in ADMONITIONS:
                # A heading the page itself has (outside any admonition box) is a real section.
                if page() is not None and last in page().headings:
                    m["admonition_words_as_real_sections"] += 1
                else:
                    m["admonition_chunks"] += 1
                    example("admonition", {"source": d["source"], "header_path": hp})
            if affix and any(has_site_name(h, affix) for h in hp):
                m["site_name_chunks"] += 1
                example("site_name", {"source": d["source"], "header_path": hp})
    n = max(m["chunks"], 1)
    m["chunks_per_page"] = round(m["chunks"] / max(m["pages"], 1), 2)
    m["template_share"] = m["template_chunks"] / n
    m["template_only_share"] = m["template_only_chunks"] / n
    m["repeated_share"] = m["repeated_chunks"] / n
    m["admonition_share"] = m["admonition_chunks"] / n
    m["site_name_share"] = m["site_name_chunks"] / n
    m["missed"] = [desc for _, test, desc in THRESHOLDS if not test(m)]
    return m


# ---------------------------------------------------------------------------------------------
# Output


def pct(x):
    return f"{100 * x:.1f}%" if x else "0"


def markdown(results):
    head = (
        "| site | pages | chunks | chunks/page | template text | template only | repeated element"
        " | admonition heading | site name in path | empty pages | hubs | done |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for m in results:
        empty = f"{m['empty_pages']}" + ("" if m["body_text_known"] else "*")
        if m["pages_missing_from_output"]:
            empty += f" ({m['pages_missing_from_output']} not in the output)"
        rows.append(
            f"| {m['site']} | {m['pages']} | {m['chunks']} | {m['chunks_per_page']} "
            f"| {m['template_chunks']} ({pct(m['template_share'])}) "
            f"| {m['template_only_chunks']} ({pct(m['template_only_share'])}) "
            f"| {m['repeated_chunks']} ({pct(m['repeated_share'])}) "
            f"| {m['admonition_chunks']} ({pct(m['admonition_share'])}) "
            f"| {m['site_name_chunks']} ({pct(m['site_name_share'])}) "
            f"| {empty} | {m['hub_pages']} | {'yes' if not m['missed'] else 'no (' + str(len(m['missed'])) + ')'} |"
        )
    out = head + "\n".join(rows) + "\n"
    if any(not m["body_text_known"] for m in results):
        out += "\n\\* no page folder given: every page without chunks is counted as empty.\n"
    for m in results:
        a = m["site_affix"]
        out += f"\n### {m['site']}\n\n"
        out += (
            f"site name: {a['name']!r} ({a['kind']} of {a['pages']} of {a['titled_pages']} titles)\n"
            if a
            else "site name: none detected\n"
        )
        if m["missed"]:
            out += "missed: " + "; ".join(m["missed"]) + "\n"
        for kind, items in m["examples"].items():
            for it in items:
                out += f"- {kind}: {json.dumps(it, ensure_ascii=False)[:400]}\n"
    return out


# ---------------------------------------------------------------------------------------------
# Self-test


def self_test():
    """A handcrafted site with known anomalies gives known counts."""
    chrome_txt = "# test chrome\nPrevious topic\nNext topic\n© Copyright 2001 Example Org.\nre:^Prev\\s*\\|\\s*Up\\s*\\|\\s*Next$\n"

    def chunk(hp, body):
        return {"text": " > ".join(hp) + "\n\n" + body, "header_path": hp, "tokens": len(body.split())}

    site = "Widget Manual"
    docs = [
        # 1 template chunk (phrase inside real text), 1 repeated (title == first heading after
        # the site name and the numbering are removed), 1 site name in path.
        {
            "source": "a.html",
            "url": None,
            "title": f"Install — {site}",
            "hub": False,
            "chunks": [
                chunk([f"Install — {site}", "1. Install"], "Run the installer and then read the Next topic below."),
                chunk(["Install", "Requirements"], "You need a compiler, a linker and twelve free megabytes."),
            ],
        },
        # 1 template-only chunk (a navigation table), 1 admonition heading.
        {
            "source": "b.html",
            "url": "https://example.org/b.html",
            "title": f"Configure — {site}",
            "hub": False,
            "chunks": [
                chunk(["Configure"], "Prev | Up | Next\n\n[Previous topic](a.html)"),
                chunk(["Configure", "Files", "Note"], "The file is read once at start-up."),
                chunk(["Configure", "Files"], "Settings live in widget.conf, one per line."),
            ],
        },
        # A hub page with chunks; no anomaly.
        {
            "source": "c.html",
            "url": None,
            "title": f"Index — {site}",
            "hub": True,
            "chunks": [chunk(["Index"], "Install, configure and run the widget.")],
        },
        # No chunks, with body text on disk: one empty page.
        {"source": "d.html", "url": None, "title": f"Reference — {site}", "hub": False, "chunks": []},
        # No chunks, a redirect stub on disk: not an empty page.
        {"source": "e.html", "url": None, "title": None, "hub": False, "chunks": []},
        # No chunks, a page that is only a long menu: not an empty page.
        {"source": "f.html", "url": None, "title": None, "hub": False, "chunks": []},
        # "Example" is a real <h2> of the page: not counted. "Warning" is a heading inside a
        # warning box: counted.
        {
            "source": "g.html",
            "url": None,
            "title": f"Usage — {site}",
            "hub": False,
            "chunks": [
                chunk(["Usage", "Example"], "widget --fast input.txt runs the widget quickly."),
                chunk(["Usage", "Warning"], "The fast mode skips the safety checks entirely."),
            ],
        },
    ]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "chrome").mkdir()
        (t / "chrome" / "widget.txt").write_text(chrome_txt, encoding="utf-8")
        (t / "out").mkdir()
        with open(t / "out" / "widget.jsonl", "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d) + "\n")
        pages = t / "pages"
        pages.mkdir()
        words = " ".join(f"word{i}" for i in range(60))
        (pages / "d.html").write_text(
            f"<html><head><title>x</title><script>{words}</script></head><body><p>{words}</p>"
            "<p>Previous topic</p></body></html>"
        )
        (pages / "e.html").write_text(
            f"<html><head><style>{words}</style></head><body>Redirecting to <a href=a.html>a</a>…</body></html>"
        )
        for name in ("a.html", "c.html"):
            (pages / name).write_text("<html><body><h1>Install</h1><p>Run the installer.</p></body></html>")
        menu = "".join(f"<li><a href=p{i}.html>Entry {i}</a></li>" for i in range(50))
        (pages / "f.html").write_text(f"<html><body><ul>{menu}</ul><p>Short footer.</p></body></html>")
        (pages / "b.html").write_text(
            "<html><body><h1>Configure</h1><h2>Files</h2><div class='admonition note'>"
            "<p class='admonition-title'>Note</p><p>The file is read once at start-up.</p></div></body></html>"
        )
        (pages / "g.html").write_text(
            "<html><body><h1>Usage</h1><h2>Example</h2><p>widget --fast input.txt</p>"
            "<div class='warning'><h3>Warning</h3><p>The fast mode skips the checks.</p></div></body></html>"
        )
        # On disk but not in the output: with body text (h.html) an empty page; a stub (i.html)
        # only a page without chunks.
        (pages / "h.html").write_text(f"<html><body><p>{words}</p></body></html>")
        (pages / "i.html").write_text("<html><body>Moved.</body></html>")
        (pages / ".hidden.html").write_text(f"<html><body><p>{words}</p></body></html>")
        (t / "out" / "widget.root").write_text(str(pages) + "\n")
        results = run_all(t / "out", t / "chrome")
        (m,) = results
        want = {
            "pages": 7,
            "chunks": 8,
            "template_chunks": 2,
            "template_only_chunks": 1,
            "repeated_chunks": 1,
            "admonition_chunks": 2,
            "admonition_words_as_real_sections": 1,
            "site_name_chunks": 1,
            "pages_without_chunks": 5,
            "pages_missing_from_output": 2,
            "empty_pages": 2,
            "hub_pages": 1,
        }
        got = {k: m[k] for k in want}
        failures = [f"{k}: want {v}, got {got[k]}" for k, v in want.items() if got[k] != v]
        if not m["site_affix"] or m["site_affix"]["name"] != site:
            failures.append(f"site name: want {site!r}, got {m['site_affix']}")
        if len(m["missed"]) != len(THRESHOLDS):
            failures.append(f"every threshold should be missed, got {m['missed']}")
        # Without the page folder, every page without chunks counts as empty and every
        # admonition word as a heading.
        (t / "out" / "widget.root").unlink()
        m_nofolder = run_all(t / "out", t / "chrome")[0]
        if (m_nofolder["empty_pages"], m_nofolder["admonition_chunks"]) != (3, 3):
            failures.append("without a page folder, every page without chunks and every admonition word should count")
        # A site that gives every page the same title has that title as its name.
        same = [
            {"source": f"s{i}.html", "url": None, "title": "Gadget Docs", "hub": False,
             "chunks": [chunk(["Gadget Docs", f"Part {i}"], f"Gadget part {i} explained in full.")]}
            for i in range(4)
        ]
        m3 = measure("same", same, [])
        if not m3["site_affix"] or m3["site_affix"]["name"] != "Gadget Docs" or m3["site_name_chunks"] != 4:
            failures.append(f"a shared whole title should be the site name, got {m3['site_affix']}, {m3['site_name_chunks']}")
        # A clean site passes every threshold.
        clean = [
            {"source": f"p{i}.html", "url": None, "title": f"Page {i}", "hub": False,
             "chunks": [chunk([f"Page {i}", "Usage"], f"Call widget number {i} with care.")]}
            for i in range(4)
        ]
        m2 = measure("clean", clean, load_chrome(t / "chrome" / "widget.txt"))
        if m2["missed"]:
            failures.append(f"a clean site should pass, missed {m2['missed']}")
        # Bad input names the file and the line.
        bad = t / "bad.jsonl"
        bad.write_text(json.dumps(docs[0]) + "\n" + '{"source": "x.html", "url": null}\n')
        try:
            load_jsonl(bad)
            failures.append("a line without 'title' should be refused")
        except InputError as e:
            if f"{bad}:2" not in str(e):
                failures.append(f"the error should name {bad}:2, got {e}")
        for text, want_err in (
            (b"\xff\n", "not UTF-8"),
            (json.dumps(dict(docs[0], source="../x.html")).encode() + b"\n", "not a relative path"),
        ):
            bad.write_bytes(text)
            try:
                load_jsonl(bad)
                failures.append(f"{text[:20]!r} should be refused")
            except InputError as e:
                if want_err not in str(e):
                    failures.append(f"the error for {text[:20]!r} should say {want_err!r}, got {e}")
        for bad_docs, bad_root, want_err in (
            ([], None, "no documents"),
            ([docs[0], docs[0]], None, "appears twice"),
            ([dict(docs[0], source="zzz.html")], pages, "has no zzz.html"),
        ):
            try:
                measure("widget", bad_docs, [], bad_root)
                failures.append(f"measure should refuse: {want_err}")
            except InputError as e:
                if want_err not in str(e):
                    failures.append(f"measure's error should say {want_err!r}, got {e}")
        for text, want_err in (("re:([\n", "bad regular expression"), ("re:x*\n", "matches empty text")):
            bad_chrome = t / "bad_chrome.txt"
            bad_chrome.write_text(text)
            try:
                load_chrome(bad_chrome)
                failures.append(f"chrome line {text!r} should be refused")
            except InputError as e:
                if want_err not in str(e) or f"{bad_chrome}:1" not in str(e):
                    failures.append(f"chrome line {text!r}: want {want_err!r} at {bad_chrome}:1, got {e}")
        md = markdown(results)
        if "| widget | 7 | 8 |" not in md:
            failures.append("the Markdown table lacks the widget row")
    if failures:
        print("check.py self-test FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("check.py self-test: ok")
    return 0


# ---------------------------------------------------------------------------------------------
# Driver


def run_all(folder, chrome_dir):
    files = sorted(Path(folder).glob("*.jsonl"))
    if not files:
        raise InputError(f"{folder}: no <site>.jsonl files")
    out = []
    for f in files:
        site = f.stem
        root_file = f.with_suffix(".root")
        root = root_file.read_text(encoding="utf-8").strip() if root_file.is_file() else None
        if root and not Path(root).is_dir():
            raise InputError(f"{root_file}: page folder {root} is not a folder")
        out.append(measure(site, load_jsonl(f), load_chrome(Path(chrome_dir, f"{site}.txt")), root))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="check.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--site", help="site name (its chrome list is <chrome-dir>/<site>.txt)")
    g.add_argument("--all", metavar="DIR", help="folder of <site>.jsonl (and <site>.root) files")
    g.add_argument("--self-test", action="store_true", help="check the checker on a handcrafted site")
    ap.add_argument("paths", nargs="*", help="JSON Lines files of --site")
    ap.add_argument("--root", help="the site's page folder (with --site)")
    ap.add_argument("--chrome-dir", default=str(HERE / "chrome"))
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("--markdown-out", help="also write the Markdown report here")
    ap.add_argument("--json-out", help="also write the JSON report here")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a site misses a done threshold")
    a = ap.parse_args(argv)
    if a.self_test:
        if a.paths:
            ap.error("--self-test takes no files")
        return self_test()
    if a.site is not None and not a.paths:
        ap.error("--site needs at least one JSON Lines file")
    if a.all is not None and (a.paths or a.root):
        ap.error("--all takes a folder, not files or --root")
    if a.site is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", a.site):
        ap.error(f"bad site name {a.site!r}")
    try:
        if a.all is not None:
            if not Path(a.all).is_dir():
                raise InputError(f"{a.all}: not a folder")
            results = run_all(a.all, a.chrome_dir)
        else:
            if a.root and not Path(a.root).is_dir():
                raise InputError(f"{a.root}: not a folder")
            docs = [d for p in a.paths for d in load_jsonl(p)]
            results = [measure(a.site, docs, load_chrome(Path(a.chrome_dir, f"{a.site}.txt")), a.root)]
    except InputError as e:
        print(f"check.py: {e}", file=sys.stderr)
        return 1
    md = markdown(results)
    js = json.dumps({"thresholds": [d for _, _, d in THRESHOLDS], "sites": results}, indent=2, ensure_ascii=False)
    for path, text in ((a.markdown_out, md), (a.json_out, js + "\n")):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
    print(js if a.json else md, end="" if not a.json else "\n")
    missed = [m for m in results if m["missed"]]
    if a.strict and missed:
        for m in missed:
            print(f"check.py: {m['site']}: missed {'; '.join(m['missed'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
