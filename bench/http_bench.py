#!/usr/bin/env python3
"""HTTP gateway throughput: requests/s and latency of feature JSON on a fresh
saedictd --demo, against GET /healthz measured in the same run (the HTTP
transport alone, so the ratio is what the feature work costs).

  python3 bench/http_bench.py [--server build/server/saedictd] [--seconds 10]
                              [--connections 4]

Each connection is one keep-alive client thread (http.client); on a 2-core
machine client and server share the cores, so the figures are a lower bound
of what the server alone serves. Features cycle over 0..511 so the answers
are not one cached page.
"""
import argparse
import http.client
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def start_server(binary, work):
    port_file = pathlib.Path(work) / "http_port"
    grpc_port_file = pathlib.Path(work) / "port"
    proc = subprocess.Popen(
        [binary, f"--data_dir={work}/var", f"--dictionary_root={work}", "--port=0",
         "--metrics_port=-1", "--http_port=0", f"--http_port_file={port_file}",
         f"--port_file={grpc_port_file}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if grpc_port_file.exists() and grpc_port_file.read_text().strip():
            return proc, int(port_file.read_text())
        if proc.poll() is not None:
            sys.exit("saedictd exited")
        time.sleep(0.1)
    proc.kill()
    sys.exit("saedictd did not start")


def run(port, path_of, seconds, connections):
    latencies = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    errors = []

    def worker(w):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine = []
        i = w
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            conn.request("GET", path_of(i), headers={"Accept-Encoding": "gzip"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
                break
            mine.append(time.perf_counter() - t0)
            i += connections
        with lock:
            latencies.extend(mine)

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if errors:
        sys.exit(f"HTTP {errors[0]}")
    latencies.sort()
    return (len(latencies) / elapsed, statistics.median(latencies) * 1e3,
            latencies[int(0.99 * (len(latencies) - 1))] * 1e3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="build/server/saedictd")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        proc, port = start_server(args.server, work)
        try:
            cases = [
                ("GET /healthz (transport reference)", lambda i: "/healthz"),
                ("GET /v1/GetFeature (top 10, ±8 tokens)",
                 lambda i: f"/v1/GetFeature?dictionaryId=demo&feature={i % 512}&skipFamily=true"),
                ("GET /api/feature (Neuronpedia JSON)",
                 lambda i: f"/api/feature/saedict-demo/demo/{i % 512}"),
            ]
            run(port, cases[1][1], 1.0, args.connections)  # warm-up
            cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                        if l.startswith("model name")), "unknown CPU")
            print(f"CPU: {cpu}, "
                  f"{os.cpu_count()} cores; {args.connections} keep-alive connections, "
                  f"{args.seconds:.0f} s each")
            reference = None
            for name, path_of in cases:
                rps, p50, p99 = run(port, path_of, args.seconds, args.connections)
                reference = reference or rps
                print(f"{name:44s} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                      f"({rps / reference:.2f}x of /healthz)")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
