#!/usr/bin/env python3
"""Make the dynamically quantized variant of the default model.

Runs inside the pinned virtual environment that scripts/fetch_models.py creates (onnx and
onnxruntime at fixed versions); never in the system Python.

    quantize_model.py SOURCE.onnx DEST.onnx

The default model stores its weights as int8 tensors followed by `Cast` to float and `Mul` by a
per-row or per-column scale, so ONNX Runtime runs fp32 matrix products. This script:

1. folds every `Cast(int8 initializer) -> Mul(scale initializer)` pair back into one fp32
   initializer (the exact values the default model computes at run time);
2. runs onnxruntime's own dynamic quantization on the result (`quantize_dynamic`, per-channel
   signed int8 weights), which turns the matrix products into `MatMulInteger` with the
   activations quantized on the fly.

The output is written atomically; its sha256 is printed on stdout.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


def fold_int8_weights(model: onnx.ModelProto) -> int:
    """Replace each Cast(int8 init) -> Mul(float scale init) pair by one fp32 initializer."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    drop_nodes: list[onnx.NodeProto] = []
    drop_inits: set[str] = set()
    new_inits: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type != "Cast" or len(node.input) != 1:
            continue
        src = inits.get(node.input[0])
        if src is None or src.data_type != onnx.TensorProto.INT8:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Mul":
            raise SystemExit(f"quantize_model: int8 tensor {src.name} is not followed by a single Mul")
        mul = users[0]
        other = [x for x in mul.input if x != node.output[0]]
        if len(other) != 1 or other[0] not in inits:
            raise SystemExit(f"quantize_model: the scale of {src.name} is not a constant")
        q = numpy_helper.to_array(src).astype(np.float32)
        scale = numpy_helper.to_array(inits[other[0]]).astype(np.float32)
        w = (q * scale).astype(np.float32)
        new_inits.append(numpy_helper.from_array(w, mul.output[0]))
        drop_nodes += [node, mul]
        drop_inits.add(src.name)
        if len(consumers.get(other[0], [])) == 1:
            drop_inits.add(other[0])
    for n in drop_nodes:
        graph.node.remove(n)
    kept = [i for i in graph.initializer if i.name not in drop_inits]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    return len(new_inits)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: quantize_model.py SOURCE.onnx DEST.onnx")
    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    model = onnx.load(str(src))
    folded = fold_int8_weights(model)
    if folded == 0:
        raise SystemExit(f"quantize_model: {src} has no int8 weights to fold")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(model, str(fp32))
        out = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            str(fp32),
            str(out),
            op_types_to_quantize=["MatMul", "Gather"],
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QInt8,
        )
        with open(out, "rb") as f:
            os.fsync(f.fileno())
        os.replace(out, dest)
    print(sha256_file(dest))


if __name__ == "__main__":
    main()
