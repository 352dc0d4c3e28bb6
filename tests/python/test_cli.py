"""The `saedict` CLI against a real saedictd, as a user types it."""
import json
import os
import subprocess

import numpy as np

from conftest import random_sae, write_saelens


def cli(server, *args, check=True, target=None):
    proc = subprocess.run([os.environ["SAEDICT_CLI"], f"--server={target or server.target}", *args],
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_load_list_info_encode_decode(server, tmp_path):
    cfg, sae = random_sae(16, 128, seed=5, k=4)
    write_saelens(server.root / "sae", cfg, sae)
    out = cli(server, "load", "s1", "sae").stdout
    assert "s1" in out
    table = cli(server, "list").stdout
    assert "s1" in table and "demo" in table and "topk" in table
    listed = json.loads(cli(server, "--json", "list").stdout)
    assert isinstance(listed, (list, dict))
    assert "s1" in json.dumps(listed)
    info = cli(server, "--json", "info", "s1").stdout
    assert "128" in info
    x = np.random.default_rng(0).standard_normal((10, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cli(server, "encode", "s1", str(tmp_path / "x.npy"), str(tmp_path / "codes.npz"))
    codes = np.load(tmp_path / "codes.npz")
    offsets = codes["row_offsets"]
    assert offsets.dtype == np.uint64 and len(offsets) == 11
    assert np.all(np.diff(offsets) == 4)
    assert list(codes["shape"]) == [10, 128]
    cli(server, "decode", "s1", str(tmp_path / "codes.npz"), str(tmp_path / "xhat.npy"))
    x_hat = np.load(tmp_path / "xhat.npy")
    assert x_hat.shape == (10, 16)
    dense = np.zeros((10, 128), np.float64)
    rows = np.repeat(np.arange(10), np.diff(offsets).astype(np.int64))
    dense[rows, codes["indices"].astype(np.int64)] = codes["values"]
    np.testing.assert_allclose(x_hat, dense @ sae["W_dec"] + sae["b_dec"], rtol=1e-4, atol=1e-4)


def test_errors_exit_nonzero_with_message(server, tmp_path):
    proc = cli(server, "info", "missing", check=False)
    assert proc.returncode == 1 and "NOT_FOUND" in proc.stderr and "missing" in proc.stderr
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    proc = cli(server, "encode", "demo", str(tmp_path / "bad.npy"), str(tmp_path / "o.npz"),
               check=False)
    assert proc.returncode == 1 and "INVALID_ARGUMENT" in proc.stderr
    proc = cli(server, "frobnicate", check=False)
    assert proc.returncode == 2
    assert cli(server, "encode", "--help").returncode == 0


def test_localhost_target_needs_no_resolver(server):
    # localhost is dialled as loopback directly: works without /etc/hosts or DNS.
    port = server.target.rsplit(":", 1)[1]
    assert "demo" in cli(server, "list", target=f"localhost:{port}").stdout
