#!/usr/bin/python3
"""PyTorch baseline for the top-k SAE encode that bench/encode_bench measures.

For each shape: x' = x - b_dec; h = x' @ W_enc + b_enc (addmm); keep the k
largest per row (topk), relu, indices sorted ascending (CSR-like sparse
codes). Runs in float32 and, where this torch supports them on the CPU, with
bf16 autocast and with explicit bf16 weights. Prints one JSON object on
stdout: tokens/s (best and median over reps) per shape and mode.

Run with Debian's /usr/bin/python3 (torch 1.13, python3-torch). Single
process; uses torch.set_num_threads(os.cpu_count()).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

SHAPES = [  # (d_in, d_sae, k)
    (2304, 16384, 64),
    (768, 24576, 32),
]


def cpu_has_avx512_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512_bf16" in line for line in f)
    except OSError:
        return False


def make_sae(d_in, d_sae, seed):
    g = torch.Generator().manual_seed(seed)
    w_dec = torch.randn(d_sae, d_in, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)  # unit-norm decoder rows
    w_enc = w_dec.t().contiguous()
    b_enc = 0.01 * torch.randn(d_sae, generator=g)
    b_dec = 0.01 * torch.randn(d_in, generator=g)
    return w_enc, b_enc, b_dec


def encode_f32(x, w_enc, b_enc, b_dec, k):
    h = torch.addmm(b_enc, x - b_dec, w_enc)
    vals, idx = h.topk(k, dim=-1, sorted=False)
    idx, order = idx.sort(dim=-1)
    return idx, torch.relu(vals.gather(-1, order))


def encode_autocast(x, w_enc, b_enc, b_dec, k):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = torch.addmm(b_enc, x - b_dec, w_enc)
    vals, idx = h.float().topk(k, dim=-1, sorted=False)
    idx, order = idx.sort(dim=-1)
    return idx, torch.relu(vals.gather(-1, order))


def encode_bf16_weights(x, w_enc_bf16, b_enc, b_dec, k):
    h = torch.matmul((x - b_dec).bfloat16(), w_enc_bf16).float() + b_enc
    vals, idx = h.topk(k, dim=-1, sorted=False)
    idx, order = idx.sort(dim=-1)
    return idx, torch.relu(vals.gather(-1, order))


def time_mode(fn, n, warmup, reps):
    for _ in range(warmup):
        fn()
    secs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - t0)
    return {
        "best_tok_s": n / min(secs),
        "median_tok_s": n / statistics.median(secs),
        "best_s": min(secs),
    }


def agreement(idx_a, idx_b):
    """Fraction of (row, feature) selections present in both index sets."""
    k = idx_a.shape[1]
    same = 0
    for ra, rb in zip(idx_a.tolist(), idx_b.tolist()):
        same += len(set(ra) & set(rb))
    return same / (idx_a.shape[0] * k)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--no-bf16", action="store_true", help="float32 only")
    args = p.parse_args()
    if not args.no_bf16 and not cpu_has_avx512_bf16():
        # torch's CPU bf16 GEMM is emulated without avx512_bf16: over 10 minutes per shape.
        print("torch bf16 modes SKIPPED: this CPU has no avx512_bf16", file=sys.stderr)
        args.no_bf16 = True
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "tokens": args.tokens, "shapes": []}
    for d_in, d_sae, k in SHAPES:
        w_enc, b_enc, b_dec = make_sae(d_in, d_sae, seed=1)
        x = torch.randn(args.tokens, d_in, generator=torch.Generator().manual_seed(2))
        n = args.tokens
        rec = {"d_in": d_in, "d_sae": d_sae, "k": k}
        ref_idx, _ = encode_f32(x, w_enc, b_enc, b_dec, k)
        rec["f32"] = time_mode(lambda: encode_f32(x, w_enc, b_enc, b_dec, k), n,
                               args.warmup, args.reps)
        if not args.no_bf16:
            w_bf16 = w_enc.bfloat16()
            modes = {
                "bf16_autocast": lambda: encode_autocast(x, w_enc, b_enc, b_dec, k),
                "bf16_weights": lambda: encode_bf16_weights(x, w_bf16, b_enc, b_dec, k),
            }
            for name, fn in modes.items():
                try:
                    idx, _ = fn()
                    rec[name] = time_mode(fn, n, args.warmup, args.reps)
                    rec[name]["agreement_vs_f32"] = agreement(idx, ref_idx)
                except RuntimeError as e:  # no bf16 kernel for this CPU/build
                    rec[name] = {"error": str(e).splitlines()[0]}
        out["shapes"].append(rec)
        print(f"torch {d_in}x{d_sae} k={k}: " +
              ", ".join(f"{m} {v['best_tok_s']:.0f} tok/s" for m, v in rec.items()
                        if isinstance(v, dict) and "best_tok_s" in v),
              file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
