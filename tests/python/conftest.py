"""Fixtures: a real saedictd process on a free loopback port, and SAEs in
SAELens format written with numpy (safetensors writer below)."""
import json
import os
import signal
import struct
import subprocess
import time

import numpy as np
import pytest

import saedict


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def random_sae(d_in, d_sae, seed, architecture="topk", k=8):
    rng = np.random.default_rng(seed)
    w_dec = rng.standard_normal((d_sae, d_in)).astype(np.float32)
    w_dec /= np.linalg.norm(w_dec, axis=1, keepdims=True)
    sae = {"W_enc": (w_dec.T + 0.1 * rng.standard_normal((d_in, d_sae))).astype(np.float32),
           "b_enc": (0.05 * rng.standard_normal(d_sae)).astype(np.float32),
           "W_dec": w_dec,
           "b_dec": (0.1 * rng.standard_normal(d_in)).astype(np.float32)}
    if architecture == "jumprelu":
        sae["threshold"] = np.full(d_sae, 0.3, np.float32)
    cfg = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "architecture": architecture,
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "metadata": {"model_name": "pytest-model", "hook_name": "blocks.1.hook_resid_pre"}}
    if architecture == "topk":
        cfg["k"] = k
    return cfg, sae


def read_safetensors(path):
    """{name: float32 array} of a safetensors file of F32 tensors."""
    raw = open(path, "rb").read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + size + begin:8 + size + end], "<f4").reshape(t["shape"])
    return out


def reference_encode(cfg, sae, x):
    """The codes of x in float64 (topk, jumprelu or standard; b_dec subtracted first)."""
    x = x.astype(np.float64)
    pre = (x - sae["b_dec"].astype(np.float64)) @ sae["W_enc"].astype(np.float64) + sae["b_enc"]
    if cfg["architecture"] == "topk":
        f = np.zeros_like(pre)
        top = np.argsort(-pre, axis=1, kind="stable")[:, :cfg["k"]]
        np.put_along_axis(f, top, np.take_along_axis(pre, top, axis=1), axis=1)
        return np.maximum(f, 0)
    if cfg["architecture"] == "jumprelu":
        return pre * (pre > sae["threshold"])
    return np.maximum(pre, 0)


def expect_reference_codes(got, folder, name, x, sae):
    """Dense codes `got` of stories260k's first 2048 tokens `x` under SAE
    `name` (its float32 tensors `sae`) against the float64 references in
    folder/reference: the same latents on every row and values within 1e-4,
    except rows at a decision boundary (the references' near-tie rows for
    topk; a pre-activation within float32 error of a jumprelu threshold),
    where at most two latents may differ."""
    metrics = json.loads((folder / "reference/metrics.json").read_text())
    ref_idx = np.load(folder / f"reference/{name}_indices.npy")
    ref_val = np.load(folder / f"reference/{name}_values.npy")
    if "threshold" not in sae:
        ties = set(metrics[name]["ref_near_tie_rows"])
    else:
        x64 = x.astype(np.float64) - sae["b_dec"]
        pre = x64 @ sae["W_enc"] + sae["b_enc"]
        bound = 1e-5 * (np.abs(x64) @ np.abs(sae["W_enc"]) + np.abs(sae["b_enc"]))
        ties = set(np.flatnonzero((np.abs(pre - sae["threshold"]) <= bound).any(axis=1)))
    assert len(ties) < 50
    for row in range(len(x)):
        want = ref_idx[row][ref_idx[row] >= 0]
        values = ref_val[row][:len(want)]
        have = set(np.flatnonzero(got[row]))
        if row in ties:  # a latent at the boundary may legitimately differ
            assert len(have ^ set(want)) <= 2, (name, row)
            keep = np.isin(want, list(have))
            want, values = want[keep], values[keep]
        else:
            assert have == set(want), (name, row)
        np.testing.assert_allclose(got[row, want], values, rtol=1e-4, atol=1e-5)


def write_saelens(folder, cfg, sae):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    write_safetensors(os.path.join(folder, "sae_weights.safetensors"), sae)


class Server:
    """saedictd on a free loopback port with its data under tmp_path; the demo
    dictionary `demo` is made, its demo corpus only with demo_corpus=True
    (the corpus tests count what they store in `demo`). `client` is a
    saedict.Client for it (client_args go to saedict.connect)."""

    def __init__(self, tmp_path, extra_flags=(), token=None, demo_corpus=False, **client_args):
        self.data_dir = tmp_path / "var"
        self.root = tmp_path / "root"
        self.root.mkdir(exist_ok=True)  # a restart on the same tmp_path keeps root and data
        port_file = tmp_path / "port"
        metrics_port_file = tmp_path / "metrics_port"
        for stale in (port_file, metrics_port_file):
            stale.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [os.environ["SAEDICT_SAEDICTD"], "--port=0", f"--port_file={port_file}", "--metrics_port=0",
             f"--metrics_port_file={metrics_port_file}", "--http_port=0",
             f"--data_dir={self.data_dir}", f"--dictionary_root={self.root}",
             f"--demo_corpus={str(demo_corpus).lower()}", *extra_flags],
            stderr=open(tmp_path / "saedictd.log", "a"))
        deadline = time.time() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError((tmp_path / "saedictd.log").read_text())
            time.sleep(0.05)
        self.target = f"127.0.0.1:{port_file.read_text().strip()}"
        while not metrics_port_file.exists():  # written right after the gRPC port
            time.sleep(0.05)
        self.metrics_port = int(metrics_port_file.read_text().strip())
        self.client = saedict.connect(self.target, token=token, **client_args)

    def stop(self):
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()
