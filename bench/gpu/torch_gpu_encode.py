#!/usr/bin/env python3
"""PyTorch on the GPU: the top-k SAE encode gpu_encode_bench measures.

For each shape (d_in x d_sae, k): x' = x - b_dec; h = x' @ W_enc + b_enc
(addmm on the device); keep the k largest per row (topk), relu, indices
sorted ascending, and copy only the codes (indices and values) back to the
host, as saedict's CUDA backend does. The host rows are copied in per call
(pinned memory), so both sides pay the same transfers. Modes: f32 (TF32 off)
and bf16 (bf16 weights and activations, the matmul on tensor cores).

Prints one JSON object: tokens/s (median and best over --reps) per shape and
mode. Needs torch with CUDA (the GPU machine's python3 has it); exits 3 when
torch or a CUDA device is missing.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
except ImportError:
    print("torch_gpu_encode: no torch in this python3", file=sys.stderr)
    sys.exit(3)

SHAPES = {"2304x16384_k64": (2304, 16384, 64), "4096x131072_k64": (4096, 131072, 64)}


def make_sae(d_in, d_sae, device):
    g = torch.Generator(device="cpu").manual_seed(1)
    w_dec = torch.randn(d_sae, d_in, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    w_enc = w_dec.t().contiguous().to(device)
    b_enc = (0.01 * torch.randn(d_sae, generator=g)).to(device)
    b_dec = (0.01 * torch.randn(d_in, generator=g)).to(device)
    return w_enc, b_enc, b_dec


def encode(x_host, w_enc, b_enc, b_dec, k, dtype):
    x = x_host.to(w_enc.device, non_blocking=True)
    if dtype == torch.bfloat16:
        h = torch.addmm(b_enc.to(dtype), (x - b_dec).to(dtype), w_enc).float()
    else:
        h = torch.addmm(b_enc, x - b_dec, w_enc)
    vals, idx = h.topk(k, dim=-1, sorted=False)
    idx, order = idx.sort(dim=-1)
    vals = torch.relu(vals.gather(-1, order))
    return idx.cpu(), vals.cpu()  # synchronizes: the codes are on the host


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, default=16384)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--shape", default="", help="one of " + ", ".join(SHAPES))
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("torch_gpu_encode: torch sees no CUDA device", file=sys.stderr)
        sys.exit(3)
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device("cuda")
    shapes = {args.shape: SHAPES[args.shape]} if args.shape else SHAPES
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "tokens": args.tokens, "shapes": {}}
    for name, (d_in, d_sae, k) in shapes.items():
        w_enc, b_enc, b_dec = make_sae(d_in, d_sae, device)
        x = torch.randn(args.tokens, d_in).pin_memory()
        res = {}
        for mode, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
            w = w_enc if dtype == torch.float32 else w_enc.to(torch.bfloat16)
            for _ in range(args.warmup):
                encode(x, w, b_enc, b_dec, k, dtype)
            rates = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                encode(x, w, b_enc, b_dec, k, dtype)
                rates.append(args.tokens / (time.perf_counter() - t0))
            res["torch_" + mode] = {"tokens_per_s": statistics.median(rates),
                                    "best_tokens_per_s": max(rates)}
            del w
        out["shapes"][name] = res
        del w_enc, b_enc, b_dec
        torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
