"""Shared fixtures: one store of the fixture site, built once per run with ragsnap.rebuild.

The store has two snapshots (the second adds a section to one page), so rollback and refresh
have somewhere to go. Tests that change a store work on a copy of it.
"""

import os
import shutil
from pathlib import Path

import pytest

import ragsnap

REPO = Path(os.environ.get("RAGSNAP_REPO", Path(__file__).resolve().parents[2]))
SITE = REPO / "fixtures" / "site"
MODEL = Path(os.environ.get("RAGSNAP_CACHE", REPO / ".cache" / "runtime")) / "models" / "minilm-l6-int8"

# A question the fixture site answers, and one it does not.
ANSWERED = "How long does Tidewater wait before trying a failed job again, and how is that delay worked out?"
OFF_TOPIC = "who won the 1998 football world cup?"


class Built:
    """The store built for the session: its folder, both snapshot ids, the site copy."""

    def __init__(self, root: Path, store: Path, first: str, second: str, site: Path):
        self.root, self.store, self.first, self.second, self.site = root, store, first, second, site

    def copy(self, dest: Path) -> Path:
        """A copy of the store (no writer runs on the original while tests read it)."""
        out = dest / "store"
        shutil.copytree(self.store, out, symlinks=True)
        return out


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    root = tmp_path_factory.mktemp("built")
    site = root / "site"
    shutil.copytree(SITE, site)
    store = root / "store"
    first = ragsnap.rebuild(store, site)
    assert first["outcome"] == "promoted", first
    page = site / "faq.html"
    html = page.read_text()
    assert "</main>" in html
    page.write_text(html.replace("</main>", "<h2>Themes</h2><p>The console has a dark theme.</p></main>", 1))
    second = ragsnap.rebuild(store, str(site))
    assert second["outcome"] == "promoted", second
    assert second["parent_id"] == first["snapshot_id"]
    return Built(root, store, first["snapshot_id"], second["snapshot_id"], site)


@pytest.fixture(scope="session")
def searcher(built) -> ragsnap.Searcher:
    return ragsnap.Searcher.open(built.store)


@pytest.fixture()
def other_model(tmp_path) -> Path:
    """Another embedding identity: the same weights read with a shorter input length."""
    other = tmp_path / "other-model"
    other.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (other / name).symlink_to((MODEL / name).resolve())
    toml = (MODEL / "model.toml").read_text()
    assert "max_tokens = 256" in toml
    (other / "model.toml").write_text(toml.replace("max_tokens = 256", "max_tokens = 128"))
    return other
