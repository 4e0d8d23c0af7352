#!/usr/bin/env python3
"""Build the unanswerable question sets of the refusal evaluation (standard library only).

Three kinds, each split into a ``tune`` and a ``held`` half by blake2b of the question:

* ``offtopic``: questions from templates x subjects no software manual covers (cooking, travel,
  sport, nature, ...), written for this evaluation and different from the generic probes the
  rebuild calibrates on;
* ``foreign``: identifiers taken from other documentation than the corpus (the ``<code>``
  elements of other Debian manuals' HTML, e.g. Node.js, Erlang, CMake), kept only when they
  are identifier-like and absent from the corpus: neither the identifier nor its final component
  occurs as a whole word in the corpus text;
* ``near_miss``: real-looking API names the corpus does not define: an owner that the corpus
  uses in a dotted name (``json`` of ``json.dumps``) with an invented function made of two parts
  of the corpus's own snake_case names (``dump_lines``), checked absent the same way.

The output is a pure function of the inputs (no randomness). One JSON object a line:
``{"kind", "split", "query", "source"}``.

    python3 eval/make_refusal_sets.py --corpus DIR --foreign DIR [--foreign DIR ...] --out FILE
"""
import argparse
import hashlib
import html
import json
import os
import re
import sys

WORD = re.compile(r"[A-Za-z0-9_]+")
CODE = re.compile(r"<code[^>]*>(.*?)</code>", re.S)
TAG = re.compile(r"<[^>]+>")


def h(s):
    return int(hashlib.blake2b(s.encode(), digest_size=8).hexdigest(), 16)


def split_of(q):
    return "tune" if h("split\x1f" + q) % 2 == 0 else "held"


def html_files(root, limit=None):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith(("_", ".")))
        out.extend(os.path.join(d, f) for f in sorted(files) if f.endswith(".html"))
    out.sort()
    if limit is not None and len(out) > limit:
        out = sorted(out, key=h)[:limit]
    return out


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def code_texts(page):
    for m in CODE.finditer(page):
        yield " ".join(html.unescape(TAG.sub("", m.group(1))).split())


def corpus_words_and_codes(root):
    words, codes = set(), []
    for p in html_files(root):
        page = read(p)
        text = html.unescape(TAG.sub(" ", page))
        words.update(w.lower() for w in WORD.findall(text))
        codes.extend(code_texts(page))
    return words, codes


IDENT = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*)(?:[.:][A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?$")


def identifier_like(name):
    """Dotted names, snake_case, CamelCase, upper-case names with `_`: the shapes a programmer
    pastes. Plain lower-case words are not identifiers."""
    bare = name[:-2] if name.endswith("()") else name
    if not IDENT.match(name) or len(bare) < 4 or len(bare) > 60:
        return False
    parts = re.split(r"[.:]", bare)
    if len(parts) > 1:
        return all(len(p) >= 2 for p in parts)
    w = parts[0]
    inner = w.strip("_")
    return ("_" in inner) or bool(re.search(r"[a-z][A-Z]", w))


def final_component(name):
    bare = name[:-2] if name.endswith("()") else name
    return re.split(r"[.:]", bare)[-1].lower()


def absent(name, words):
    """Neither the identifier nor its final component occurs as a whole word in the corpus."""
    return final_component(name) not in words


def foreign_identifiers(roots, words, n):
    seen, cands = set(), []
    for root in roots:
        for p in html_files(root, limit=400):
            for t in code_texts(read(p)):
                # `fs.readFile(path[, options])` -> `fs.readFile()`; Erlang `m:f/2` -> `m:f`.
                t = re.sub(r"/\d+$", "", t)
                t = re.sub(r"\(.*\)$", "()", t)
                if not identifier_like(t) or t.lower() in seen:
                    continue
                seen.add(t.lower())
                if absent(t, words):
                    cands.append((h("foreign\x1f" + t), t, os.path.basename(root.rstrip("/"))))
    cands.sort()
    # Spread over the sources: at most n // len(roots) + 1 from one.
    per, out = {}, []
    for _, t, src in cands:
        if per.get(src, 0) >= n // max(1, len(roots)) + 1:
            continue
        per[src] = per.get(src, 0) + 1
        out.append((t, src))
        if len(out) == n:
            break
    return out


def near_misses(codes, words, n):
    members, parts = {}, set()
    for t in codes:
        t = re.sub(r"\(.*\)$", "", t)
        if not re.match(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+$", t):
            continue
        comps = t.split(".")
        owner, last = ".".join(comps[:-1]), comps[-1]
        if len(owner) >= 2 and owner.islower():
            members.setdefault(owner, set()).add(last)
        if "_" in last.strip("_"):
            for piece in last.split("_"):
                if len(piece) >= 3 and piece.isalpha() and piece.islower():
                    parts.add(piece)
    # Owners the corpus documents several members of (modules, classes), not one-off names.
    owners = sorted((o for o, m in members.items() if len(m) >= 3), key=h)
    parts = sorted(parts, key=h)
    out, used = [], set()
    pairs = [(r, i, o) for r in range(6) for i, o in enumerate(owners)]  # up to 6 per owner
    for r, i, owner in pairs:
        if len(out) == n or not parts:
            break
        for j in range(len(parts)):
            a = parts[(i * 7 + r * 31 + j) % len(parts)]
            b = parts[(i * 13 + r * 17 + j * 3 + 1) % len(parts)]
            name = f"{a}_{b}"
            if a == b or name in used or name in words or f"{owner}.{name}" in words:
                continue
            used.add(name)
            out.append((f"{owner}.{name}()", owner))
            break
    return out


ACTIVITIES = [
    "bake rye bread at home", "train for a half marathon", "grow basil on a windowsill", "tie a bowline knot",
    "brew green tea properly", "paint a watercolour sunset", "fix a squeaky door hinge", "plan a road trip in Norway",
    "learn to juggle three balls", "care for a bonsai tree", "make fresh pasta by hand", "choose hiking boots",
    "pickle cucumbers", "teach a parrot to talk", "build a birdhouse", "iron a dress shirt", "ski in deep powder",
    "carve a pumpkin", "clean silver jewellery", "keep chickens in a garden", "sharpen a kitchen knife",
    "prepare for a job interview", "decorate a small bedroom", "remove rust from a bicycle chain",
    "make candles from beeswax", "start a vegetable compost", "photograph the night sky", "brew cider from apples",
    "store winter tyres", "calm a nervous dog during fireworks",
]
SUBJECTS = [
    "the French Revolution", "the life cycle of a butterfly", "the rules of cricket", "the Great Wall of China",
    "the migration of wildebeest", "the history of jazz", "the Amazon rainforest", "the moons of Jupiter",
    "the Renaissance painters", "the Tour de France", "the Sahara desert climate", "the Viking age",
    "the origins of the Olympic games", "the anatomy of the human heart", "the coral reefs of Belize",
    "the Silk Road trade", "the Ming dynasty", "the life of Cleopatra", "the plays of Shakespeare",
    "the formation of glaciers", "the Apollo moon landings", "the Inca empire", "the causes of earthquakes",
    "the history of chocolate", "the symphonies of Beethoven", "the tallest waterfalls", "the Industrial Revolution",
    "the wine regions of Portugal", "the rules of ice hockey", "the habits of octopuses",
]
ACTIVITY_TEMPLATES = ["How do I {}?", "What is the easiest way to {}?", "Any tips to {} for a beginner?",
                      "What do I need to {}?"]
SUBJECT_TEMPLATES = ["Tell me about {}.", "What are the key facts about {}?", "Can you summarise {}?",
                     "Why is {} famous?"]


def offtopic(n):
    qs = [t.format(a) for a in ACTIVITIES for t in ACTIVITY_TEMPLATES]
    qs += [t.format(s) for s in SUBJECTS for t in SUBJECT_TEMPLATES]
    return sorted(qs, key=lambda q: h("offtopic\x1f" + q))[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="folder of the corpus HTML")
    ap.add_argument("--foreign", action="append", default=[], help="folder of another manual's HTML (repeat)")
    ap.add_argument("--out", default="-")
    ap.add_argument("--per-kind", type=int, default=240)
    a = ap.parse_args()
    if not os.path.isdir(a.corpus):
        sys.exit(f"make_refusal_sets: corpus folder {a.corpus} does not exist")
    roots = [r for r in a.foreign if os.path.isdir(r)]
    for r in a.foreign:
        if r not in roots:
            print(f"make_refusal_sets: {r} is missing; skipped", file=sys.stderr)
    words, codes = corpus_words_and_codes(a.corpus)
    rows = [{"kind": "offtopic", "query": q, "source": "templates"} for q in offtopic(a.per_kind)]
    rows += [{"kind": "foreign", "query": q, "source": s} for q, s in foreign_identifiers(roots, words, a.per_kind)]
    rows += [{"kind": "near_miss", "query": q, "source": s} for q, s in near_misses(codes, words, a.per_kind)]
    for r in rows:
        r["split"] = split_of(r["query"])
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    if a.out == "-":
        sys.stdout.write(text)
    else:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    counts = {}
    for r in rows:
        counts[(r["kind"], r["split"])] = counts.get((r["kind"], r["split"]), 0) + 1
    print(f"{len(rows)} unanswerable questions: " + ", ".join(f"{k[0]}/{k[1]} {v}" for k, v in sorted(counts.items())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
