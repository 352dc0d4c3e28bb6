#!/usr/bin/env python3
"""Client benchmark, one run, on one saedictd started here (loopback):

  * upload MB/s of a ~151 MB SAELens dictionary (2304 x 8192 float32, W_enc
    and W_dec), through the Python package (c.upload) and through the C++ CLI
    (`saedict upload`, process start included);
  * Encode tokens/s of the Python client (c.encode) next to the C++ client
    (build/bench/client_encode_bench) on the same dictionary and the same
    activations (.npy, float32 [tokens, 2304]): each call sends the whole
    array and waits for the CSR reply; the two alternate, one call each per
    round (the C++ one after an untimed warm-up call on its own channel).
    Target: Python / C++ >= 0.9.

  python3 bench/client_bench.py [--tokens=4096] [--reps=5] [--build=build] [--json=out.json]

Needs the build (saedictd, saedict, client_encode_bench, build/python).
The machine should be otherwise idle; the CPU model is printed.
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def write_sae(folder, d_in, d_sae, k, seed=1):
    sys.path.insert(0, str(ROOT / "tests" / "python"))
    from conftest import random_sae, write_saelens  # the test suite's SAELens writer
    cfg, sae = random_sae(d_in, d_sae, seed, k=k)
    write_saelens(folder, cfg, sae)
    return sum(p.stat().st_size for p in pathlib.Path(folder).iterdir())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    build = pathlib.Path(args.build)
    sys.path.insert(0, str(build / "python"))
    import saedict

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="saedict_client_bench_"))
    proc = None
    try:
        sae_dir = tmp / "sae"
        size = write_sae(sae_dir, 2304, 8192, 64)
        port_file = tmp / "port"
        proc = subprocess.Popen([str(build / "server/saedictd"), "--port=0",
                                 f"--port_file={port_file}", f"--data_dir={tmp / 'var'}",
                                 f"--dictionary_root={tmp / 'root'}", "--demo=false",
                                 "--metrics_port=0", "--http_port=0"],
                                stderr=open(tmp / "saedictd.log", "w"))
        while not port_file.exists():
            if proc.poll() is not None:
                raise SystemExit((tmp / "saedictd.log").read_text())
            time.sleep(0.05)
        target = f"127.0.0.1:{port_file.read_text().strip()}"
        c = saedict.connect(target, timeout=None, max_message_bytes=1 << 30)

        def settle(ids):
            """Waits for the background index builds (they would share the CPU)."""
            from saedict.v1 import saedict_pb2 as pb
            deadline = time.time() + 600
            while any(c.get_dictionary(i).index.neighbours_state != pb.INDEX_STATE_READY
                      for i in ids):
                assert time.time() < deadline, "indexes never became READY"
                time.sleep(0.2)

        t = time.perf_counter()
        c.upload("py", sae_dir)
        py_upload = time.perf_counter() - t
        settle(["py"])
        t = time.perf_counter()
        subprocess.run([str(build / "client/saedict"), f"--server={target}", "--timeout=600s",
                        "upload", "cpp", str(sae_dir)], check=True, capture_output=True)
        cpp_upload = time.perf_counter() - t
        settle(["py", "cpp"])

        x = np.random.default_rng(2).standard_normal((args.tokens, 2304)).astype(np.float32)
        np.save(tmp / "x.npy", x)
        # Python and C++ alternate, one timed call each per round, so both see
        # the same server state (the server's time dominates and drifts).
        rates, cpp_rates = [], []
        for _ in range(args.warmup):
            c.encode("py", x)
        for _ in range(args.reps):
            t = time.perf_counter()
            codes = c.encode("py", x)
            rates.append(args.tokens / (time.perf_counter() - t))
            assert codes.num_rows == args.tokens
            out = subprocess.run([str(build / "bench/client_encode_bench"), f"--target={target}",
                                  "--dictionary=py", f"--input={tmp / 'x.npy'}", "--warmup=1",
                                  "--reps=1"], check=True, capture_output=True, text=True).stdout
            cpp_rates.append(json.loads(out)["best_tokens_per_s"])
        cpp = {"best_tokens_per_s": max(cpp_rates),
               "median_tokens_per_s": sorted(cpp_rates)[len(cpp_rates) // 2]}
        report = {
            "cpu": cpu_model(), "tokens": args.tokens, "reps": args.reps,
            "dictionary": "2304x8192 topk k=64 (SAELens, float32)",
            "upload_bytes": size,
            "upload_python_mb_per_s": size / py_upload / 1e6,
            "upload_cli_mb_per_s": size / cpp_upload / 1e6,
            "encode_python_best_tokens_per_s": max(rates),
            "encode_python_median_tokens_per_s": sorted(rates)[len(rates) // 2],
            "encode_cpp_best_tokens_per_s": cpp["best_tokens_per_s"],
            "encode_cpp_median_tokens_per_s": cpp["median_tokens_per_s"],
        }
        report["python_over_cpp_best"] = (report["encode_python_best_tokens_per_s"] /
                                          report["encode_cpp_best_tokens_per_s"])
        report["python_over_cpp_median"] = (report["encode_python_median_tokens_per_s"] /
                                            report["encode_cpp_median_tokens_per_s"])
        text = json.dumps(report, indent=1)
        print(text)
        if args.json:
            pathlib.Path(args.json).write_text(text + "\n")
        c.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
