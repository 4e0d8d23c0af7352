#!/usr/bin/env python3
"""Build the labelled question set from the back-of-book index of the Python 3.11 documentation.

Input: ``genindex-all.html`` of Debian's ``python3.11-doc`` package. Every index entry maps a term
to the page(s) documenting it; each sampled entry becomes one or two questions whose relevant
pages are the pages that entry links to. Standard library only; the output is a pure function of
the input file (sampling by blake2b of the entry, no randomness).

    python3 eval/make_questions.py [--index FILE] [--out FILE] [--per-kind N]
"""
import argparse
import hashlib
import html
import html.parser
import json
import re
import sys

DEFAULT_INDEX = "/usr/share/doc/python3.11/html/genindex-all.html"


class IndexParser(html.parser.HTMLParser):
    """Collects the entry tree of the index table: each <li> with its own text, links and children."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_table = 0
        self.stack = []  # open <li> nodes
        self.roots = []
        self.anchor = None  # (href, [text]) of the <a> being read

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "indextable" in (a.get("class") or ""):
            self.in_table += 1
        if not self.in_table:
            return
        if tag == "li":
            node = {"text": [], "links": [], "children": []}
            (self.stack[-1]["children"] if self.stack else self.roots).append(node)
            self.stack.append(node)
        elif tag == "a" and self.stack:
            self.anchor = (a.get("href") or "", [])

    def handle_endtag(self, tag):
        if not self.in_table:
            return
        if tag == "table":
            self.in_table -= 1
        elif tag == "li" and self.stack:
            self.stack.pop()
        elif tag == "a" and self.anchor is not None and self.stack:
            href, text = self.anchor
            self.stack[-1]["links"].append((href, " ".join("".join(text).split())))
            self.stack[-1]["text"].append("".join(text))
            self.anchor = None

    def handle_data(self, data):
        if self.anchor is not None:
            self.anchor[1].append(data)
        elif self.stack:
            self.stack[-1]["text"].append(data)


def page_of(href):
    page = href.split("#", 1)[0]
    return page if page.endswith(".html") and "://" not in page else None


def words_of(identifier):
    """Split an identifier the way a person would say it: lru_cache -> lru cache, getElementById ->
    get element by id, os.path.join -> os path join."""
    parts = []
    for piece in re.split(r"[^0-9A-Za-z]+", identifier):
        for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", piece):
            parts.append(w.lower())
    return " ".join(parts)


QUAL = re.compile(r"^(?P<name>.*?)\s*\((?P<qual>[^()]*)\)$")


def classify(name, qual):
    """(kind, identifier query, natural-language paraphrase) for an identifier entry."""
    bare = name[:-2] if name.endswith("()") else name
    call = "()" if name.endswith("()") else ""
    w = words_of(bare)
    m = re.fullmatch(r"in module ([\w.]+)", qual)
    if m:
        mod = m.group(1)
        if call:
            return "function", f"{mod}.{bare}()", f"how do I use the {w} function of the {words_of(mod)} module"
        return "data", f"{mod}.{bare}", f"what is {w} in the {words_of(mod)} module"
    m = re.fullmatch(r"([\w.]+) (method|attribute|class method|static method|property)", qual)
    if m:
        owner, what = m.group(1), m.group(2)
        short = owner.rsplit(".", 1)[-1]
        return what.replace(" ", "_"), f"{owner}.{bare}{call}", f"what does the {w} {what} of {words_of(short)} do"
    m = re.fullmatch(r"(class|exception) in ([\w.]+)", qual)
    if m:
        what, mod = m.group(1), m.group(2)
        return what, f"{mod}.{bare}", f"what is the {w} {what} in {words_of(mod)} used for"
    if qual in ("built-in function", "built-in class", "built-in exception", "built-in variable"):
        what = qual.split()[1]
        return "builtin", f"{bare}{call}", f"what does the built-in {w} {what} do"
    m = re.fullmatch(r"C (function|macro|type|var|member|struct)", qual)
    if m:
        return "c-api", bare, f"what is the {w} {m.group(1)} in the C API"
    if qual == "module":
        return "module", bare, f"what is the {words_of(bare)} module for"
    if qual == "environment variable":
        return "envvar", bare, f"what does the environment variable {w} control"
    if qual in ("opcode", "pdb command", "2to3 fixer", "keyword", "statement"):
        return qual.replace(" ", "-"), bare, f"what does the {w} {qual} do"
    return None


def entries(roots):
    """Yield (name, qualifier or None, pages, parent term or None) for every entry."""
    for node in roots:
        text = " ".join("".join(node["text"]).split())
        own = [p for p in (page_of(h) for h, _ in node["links"]) if p]
        head = node["links"][0][1] if node["links"] else text
        m = QUAL.match(head)
        name, qual = (m.group("name"), m.group("qual")) if m else (head, None)
        if own:
            yield name, qual, own, None
        for child in node["children"]:
            ctext = child["links"][0][1] if child["links"] else " ".join("".join(child["text"]).split())
            pages = [p for p in (page_of(h) for h, _ in child["links"]) if p]
            if not pages:
                continue
            cm = re.fullmatch(r"\(([^()]*)\)", ctext)
            if cm:  # homonym: same name, another qualifier
                yield name, cm.group(1), pages, None
            else:  # sub-entry of a concept ("loop" / "over mutable sequence")
                yield ctext, None, pages, name


def key(*parts):
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()


def build(index_path, per_kind, concepts):
    p = IndexParser()
    with open(index_path, encoding="utf-8") as f:
        p.feed(f.read())
    by_kind = {}
    seen = set()
    for name, qual, pages, parent in entries(p.roots):
        pages = sorted(set(pages))
        if any(not x.startswith(("library/", "reference/", "c-api/", "tutorial/", "howto/", "using/", "faq/",
                                "extending/")) for x in pages):
            continue  # targets: reference pages (not whatsnew/, distutils/, top-level pages); see README
        if len(pages) > 3:
            continue  # too generic to label
        if qual is not None and parent is None:
            c = classify(name, qual)
            if c is None or len(c[1]) < 2:
                continue
            kind, ident, nl = c
            k = ("id", kind, ident)
            if k in seen:
                continue
            seen.add(k)
            by_kind.setdefault(kind, []).append((key(kind, ident), ident, nl, pages, name, qual))
        elif parent is not None:
            text = f"{parent} {name}"
            if re.search(r"[()\[\]]", text) or len(text) < 8:
                continue
            k = ("concept", text.lower())
            if k in seen:
                continue
            seen.add(k)
            by_kind.setdefault("concept", []).append((key("concept", text), None, text, pages, name, parent))
    questions = []
    for kind in sorted(by_kind):
        n = concepts if kind == "concept" else per_kind
        per_page, per_child, chosen = {}, {}, []
        for entry in sorted(by_kind[kind]):
            pages, name = entry[3], entry[4]
            # Spread the sample: at most 2 entries of one kind per page, and at most 12 concept
            # sub-entries with the same wording ("module", "built-in function", ...).
            if any(per_page.get(x, 0) >= 2 for x in pages):
                continue
            if kind == "concept" and per_child.get(name, 0) >= 12:
                continue
            for x in pages:
                per_page[x] = per_page.get(x, 0) + 1
            per_child[name] = per_child.get(name, 0) + 1
            chosen.append(entry)
            if len(chosen) == n:
                break
        for h, ident, nl, pages, name, qual in chosen:
            split = "dev" if int(h, 16) % 2 == 0 else "test"
            src = {"entry": name, "qualifier": qual}
            if ident is not None:
                questions.append({"id": f"{h}-i", "kind": kind, "style": "identifier", "split": split,
                                  "query": ident, "pages": pages, **src})
            questions.append({"id": f"{h}-n", "kind": kind, "style": "natural", "split": split, "query": nl,
                              "pages": pages, **src})
    return questions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default=DEFAULT_INDEX)
    ap.add_argument("--out", default="-")
    ap.add_argument("--per-kind", type=int, default=60, help="entries sampled per identifier kind")
    ap.add_argument("--concepts", type=int, default=300, help="concept entries sampled")
    a = ap.parse_args()
    qs = build(a.index, a.per_kind, a.concepts)
    text = "".join(json.dumps(q, ensure_ascii=False, sort_keys=True) + "\n" for q in qs)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    counts = {}
    for q in qs:
        counts[(q["kind"], q["style"])] = counts.get((q["kind"], q["style"]), 0) + 1
    print(f"{len(qs)} questions: " + ", ".join(f"{k[0]}/{k[1]} {v}" for k, v in sorted(counts.items())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
