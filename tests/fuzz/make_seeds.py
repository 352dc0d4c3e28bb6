"""Writes the fuzzers' seed corpora into corpus/<target>/ (committed; rerun
to regenerate): small valid files of each format and a few near-misses.
  PYTHONPATH=build/python /usr/bin/python3 tests/fuzz/make_seeds.py"""
import io
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, array) in tensors.items():
        raw = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


rng = np.random.default_rng(0)
put("npy", "f32_2d", npy(rng.standard_normal((3, 4)).astype(np.float32)))
put("npy", "f16_1d", npy(rng.standard_normal(5).astype(np.float16)))
put("npy", "i64", npy(np.arange(6, dtype=np.int64).reshape(2, 3)))
put("npy", "fortran", npy(np.asfortranarray(rng.standard_normal((2, 3)).astype(np.float64))))
put("npy", "truncated", npy(np.zeros((4, 4), np.float32))[:-7])

for name, save in (("stored", np.savez), ("deflated", np.savez_compressed)):
    buffer = io.BytesIO()
    save(buffer, W_enc=rng.standard_normal((4, 8)).astype(np.float32),
         b_enc=np.zeros(8, np.float32), threshold=np.full(8, 0.1, np.float32))
    put("npz", name, buffer.getvalue())

put("safetensors", "sae", safetensors({
    "W_enc": ("F32", rng.standard_normal((4, 8)).astype(np.float32)),
    "b_enc": ("F32", np.zeros(8, np.float32)),
    "W_dec": ("BF16", rng.integers(0, 65535, (8, 4), dtype=np.uint16)),
    "b_dec": ("F16", np.zeros(4, np.float16))}, {"format": "pt"}))
put("safetensors", "f64_scalar", safetensors({"x": ("F64", np.array(1.5))}))
put("safetensors", "empty", safetensors({}))

put("json", "saelens_cfg", json.dumps({
    "d_in": 64, "d_sae": 512, "architecture": "topk", "k": 32, "dtype": "float32",
    "apply_b_dec_to_input": True, "normalize_activations": "none",
    "metadata": {"model_name": "m", "hook_name": "blocks.1.hook_resid_pre"}}).encode())
put("json", "sparsify_cfg", json.dumps({"num_latents": 512, "k": 32, "multi_topk": False,
                                        "d_in": 64, "signed": False}).encode())
put("json", "nested", b'{"a": [1, 2.5e300, -0, {"b": null}], "c": "\\u00e9\\n"}')

try:
    from saedict.v1 import saedict_pb2 as pb
except ImportError:
    pb = None
if pb is not None:
    x = rng.standard_normal((2, 16)).astype(np.float32)
    tensor = pb.Tensor(dtype=pb.DTYPE_F32, shape=[2, 16], data=x.tobytes())
    put("request", "encode", pb.EncodeRequest(dictionary_id="d", activations=tensor)
        .SerializeToString())
    half = pb.Tensor(dtype=pb.DTYPE_F16, shape=[1, 16], data=x[0].astype(np.float16).tobytes())
    put("request", "encode_f16", pb.EncodeRequest(dictionary_id="d", activations=half)
        .SerializeToString())
    codes = pb.SparseCodes(num_rows=2, num_features=8, row_offsets=np.array([0, 1, 3], np.uint64).tobytes(),
                           indices=np.array([5, 1, 7], np.uint32).tobytes(),
                           values=np.array([1, 2, 3], np.float32).tobytes())
    put("request", "decode", pb.DecodeRequest(dictionary_id="d", codes=codes).SerializeToString())
