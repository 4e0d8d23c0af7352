"""ragsnap.rebuild: the report, settings validated by name, and the installed wheel."""

import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

import ragsnap
from conftest import ANSWERED


def test_an_unchanged_rebuild_reports_and_writes_nothing(built, tmp_path):
    store = built.copy(tmp_path)
    report = ragsnap.rebuild(store, built.site)
    assert report["outcome"] == "unchanged" and report["snapshot_id"] == built.second
    assert {"chunks", "gates", "timings", "source_diff", "fingerprint_id"} <= set(report)
    assert len(ragsnap.Store(store).snapshots()) == 2


def test_settings_are_checked_by_name_before_anything_is_built(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(TypeError, match="chunk_size"):
        ragsnap.rebuild(store, tmp_path, chunk_size=100)
    with pytest.raises(ragsnap.InvalidRequest, match="target_token"):
        ragsnap.rebuild(store, tmp_path, chunker={"target_token": 100})
    with pytest.raises(ragsnap.InvalidRequest, match="chunker.target_tokens"):
        ragsnap.rebuild(store, tmp_path, chunker={"target_tokens": 0})
    with pytest.raises(ValueError, match="gates.max_removed_share"):
        ragsnap.rebuild(store, tmp_path, gates={"max_removed_share": 1.5})
    with pytest.raises(TypeError, match="force"):
        ragsnap.rebuild(store, tmp_path, force="yes")
    assert not store.exists(), "a refused rebuild created the store"


def test_the_wheel_installs_into_a_fresh_venv_and_answers(built, tmp_path):
    wheel = os.environ.get("RAGSNAP_WHEEL")
    if not wheel:
        pytest.skip("RAGSNAP_WHEEL is not set (scripts/python_test.sh sets it)")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check", wheel], check=True)
    code = (
        "import sys, ragsnap\n"
        "r = ragsnap.Searcher.open(sys.argv[1]).query(sys.argv[2], k=2)\n"
        "assert not r.refused, r\n"
        "print(r.snapshot_id, r.hits[0].source_path)\n"
    )
    out = subprocess.run([py, "-c", code, str(built.store), ANSWERED], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""})
    assert out.stdout.split()[0] == built.second
    where = subprocess.run([py, "-c", "import ragsnap, os; print(os.path.dirname(ragsnap.__file__))"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(env_dir), f"imported {where}, not the fresh venv's copy"
    assert (Path(where) / "py.typed").exists() and (Path(where) / "_native.pyi").exists()
    # Without the extras, the adapters say which extra to install.
    for module, extra in (("ragsnap.langchain", "ragsnap[langchain]"), ("ragsnap.llama_index", "ragsnap[llama-index]")):
        missing = subprocess.run([py, "-c", f"import {module}"], capture_output=True, text=True, cwd=tmp_path)
        assert missing.returncode != 0 and "ImportError" in missing.stderr and extra in missing.stderr, missing.stderr


def _many_pages(folder, pages=400):
    """A corpus large enough that its embedding takes many seconds on any machine: every
    paragraph is its own seeded sequence of made-up words, so no block repeats across pages
    (nothing is template) and every chunk is a cache miss in a fresh store."""
    import random

    syllables = ["ka", "lo", "mi", "ter", "van", "qu", "dro", "spe", "lin", "gor", "ush", "pel", "tay", "rix", "nom"]
    folder.mkdir()
    for i in range(pages):
        paras = []
        for j in range(4):
            rng = random.Random(i * 4 + j)
            seq = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(70)]
            paras.append("<p>" + " ".join(seq) + ".</p>")
        (folder / f"page{i:04}.html").write_text(
            f"<html><head><title>Topic {i}</title></head><body><main><h1>Topic {i}</h1>"
            + "".join(paras) + "</main></body></html>"
        )
    return folder


def test_ctrl_c_stops_a_rebuild_and_publishes_nothing(tmp_path):
    store = tmp_path / "store"
    source = _many_pages(tmp_path / "site")
    child = (
        "import sys, ragsnap\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    ragsnap.rebuild(sys.argv[1], sys.argv[2])\n"
        "    print('finished')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    p = subprocess.Popen([sys.executable, "-c", child, str(store), str(source)], stdout=subprocess.PIPE, text=True)
    # Interrupt once the child is inside the rebuild (not while it is still importing).
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert out.strip() == "interrupted"
    assert ragsnap.Store(store).snapshots() == []
    assert not any((store / "snapshots").iterdir()) and not any((store / "staging").iterdir())
