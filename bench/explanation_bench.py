#!/usr/bin/env python3
"""Explanation import and search benchmark on one saedictd (loopback).

Imports N synthetic Neuronpedia rows (a .jsonl.gz the script writes: 4-12
words each from a Zipf-distributed vocabulary of 5000 words, so a few words
are in most explanations, like "the" or "tokens" in real ones) into a
dictionary with d_sae = N, then times SearchExplanations for queries of one
rare, one common and three mixed words (p50 / p99 over the queries).

  python3 bench/explanation_bench.py [--rows=100000] [--queries=200] [--build=build]
"""
import argparse
import gzip
import json
import pathlib
import signal
import subprocess
import sys
import tempfile
import shutil
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--build", default=str(ROOT / "build"))
    args = ap.parse_args()
    build = pathlib.Path(args.build)
    sys.path[:0] = [str(build / "python"), str(ROOT / "tests" / "python")]
    import saedict
    from conftest import random_sae, write_saelens

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="saedict_explanation_bench_"))
    proc = None
    try:
        cfg, sae = random_sae(8, args.rows, seed=1)
        write_saelens(tmp / "sae", cfg, sae)
        rng = np.random.default_rng(0)
        vocab = [f"w{i}" for i in range(5000)]
        ranks = np.minimum(rng.zipf(1.3, size=args.rows * 12) - 1, len(vocab) - 1)
        path = tmp / "batch-0.jsonl.gz"
        at = 0
        with gzip.open(path, "wt") as f:
            for i in range(args.rows):
                n = int(rng.integers(4, 13))
                words = " ".join(vocab[r] for r in ranks[at:at + n])
                at += n
                f.write(json.dumps({"modelId": "m", "layer": "0", "index": str(i),
                                    "description": words, "typeName": "bench",
                                    "scoreV1": float(rng.random())}) + "\n")
        port_file = tmp / "port"
        proc = subprocess.Popen([str(build / "server/saedictd"), "--port=0",
                                 f"--port_file={port_file}", f"--data_dir={tmp / 'var'}",
                                 "--demo=false", "--metrics_port=0", "--http_port=0"],
                                stderr=open(tmp / "log", "w"))
        while not port_file.exists():
            if proc.poll() is not None:
                raise SystemExit((tmp / "log").read_text())
            time.sleep(0.05)
        c = saedict.connect(f"127.0.0.1:{port_file.read_text().strip()}", timeout=None)
        c.upload("d", tmp / "sae")
        t = time.perf_counter()
        got = c.import_explanations(path, dictionary="d")
        import_s = time.perf_counter() - t
        assert got.imported == args.rows, got
        kinds = {"rare word": lambda: vocab[int(rng.integers(2000, 5000))],
                 "most common word": lambda: vocab[0],
                 "three words": lambda: " ".join(vocab[int(r)] for r in rng.integers(0, 200, 3))}
        report = {"cpu": next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                              if l.startswith("model name")),
                  "rows": args.rows, "import_rows_per_s": args.rows / import_s,
                  "gz_bytes": path.stat().st_size}
        for name, query in kinds.items():
            times, matches = [], []
            for _ in range(args.queries):
                q = query()
                t = time.perf_counter()
                r = c.search_explanations(q, top_n=20)
                times.append(time.perf_counter() - t)
                matches.append(r.matching)
            times.sort()
            report[name] = {"p50_ms": 1e3 * times[len(times) // 2],
                            "p99_ms": 1e3 * times[min(len(times) - 1, int(len(times) * 0.99))],
                            "mean_matching": float(np.mean(matches))}
        print(json.dumps(report, indent=1))
        c.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
