#!/usr/bin/env python3
"""Ratios of bench/gpu/run_hopper.sh's results against the issue's targets.

Reads gpu_bench.json, gpu_worker.json and torch_gpu.json from the folder
given (whichever exist) and prints one line per figure: tokens/s, and
saedict BF16 / torch BF16 (target >= 1.5), saedict BF16 / cuBLAS BF16 GEMM
alone (target >= 0.70), the F32 counterparts, worker / in-process, and the
agreement with the CPU engine's F32 codes.
"""
import json
import os
import sys


def load(folder, name):
    try:
        with open(os.path.join(folder, name)) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"{name}: missing or unreadable ({e})")
        return None


def rate(entry):
    if not isinstance(entry, dict) or "tokens_per_s" not in entry:
        return None
    return entry["tokens_per_s"]


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    gpu = load(folder, "gpu_bench.json") or {"shapes": {}}
    worker = load(folder, "gpu_worker.json") or {"shapes": {}}
    torch = load(folder, "torch_gpu.json") or {"shapes": {}}
    print(f"device: {gpu.get('device', '?')}  tokens per call: {gpu.get('tokens', '?')}  "
          f"torch {torch.get('torch', 'absent')}")
    names = list(gpu["shapes"]) + [n for n in worker["shapes"] if n not in gpu["shapes"]]
    for name in names:
        s = gpu["shapes"].get(name, {})
        t = torch["shapes"].get(name, {})
        w = worker["shapes"].get(name, {})
        f32, bf16 = rate(s.get("cuda_f32")), rate(s.get("cuda_bf16"))
        g32, g16 = rate(s.get("gemm_f32")), rate(s.get("gemm_bf16"))
        t32, t16 = rate(t.get("torch_f32")), rate(t.get("torch_bf16"))
        wk = rate(w.get("worker_bf16"))
        print(f"{name}:")
        for label, value in (("saedict cuda f32", f32), ("saedict cuda bf16", bf16),
                             ("cuBLAS GEMM alone f32", g32), ("cuBLAS GEMM alone bf16", g16),
                             ("torch f32", t32), ("torch bf16", t16),
                             ("worker protocol bf16", wk)):
            print(f"  {label:24s} {value:14,.0f} tok/s" if value else f"  {label:24s} n/a")
        print(f"  bf16 / torch bf16        {ratio(bf16, t16)}  (target >= 1.5)")
        print(f"  bf16 / GEMM alone bf16   {ratio(bf16, g16)}  (target >= 0.70)")
        print(f"  f32 / torch f32          {ratio(f32, t32)}")
        print(f"  f32 / GEMM alone f32     {ratio(f32, g32)}")
        print(f"  worker / in-process bf16 {ratio(wk, bf16)}")
        print(f"  agreement with CPU F32   {json.dumps(s.get('agreement_with_cpu_f32'))}")
        for source, key in ((s, "cuda_f32"), (s, "cuda_bf16"), (s, "gemm_f32"),
                            (s, "gemm_bf16"), (w, "worker_bf16")):
            if isinstance(source.get(key), dict) and "error" in source[key]:
                print(f"  {key} error: {source[key]['error']}")


if __name__ == "__main__":
    main()
