#!/usr/bin/env bash
# Runs the encode benchmarks in one go and prints tokens/s and the ratios
# the project reports against:
#   in-process F32 / PyTorch F32        target >= 1.1
#   in-process F32 / sgemm alone        target >= 0.90 (the faster of one
#                                       M=tokens call and the encoder's tiling)
#   invariant F32 / pre-invariant F32   target >= 0.90 (Encode with the fixed-order
#                                       kernel vs the OpenBLAS tiles + activation
#                                       pass it replaced, same run)
#   in-process BF16 / PyTorch F32       target >= 3
#   BF16 selections identical to F32    target >= 0.99
#   FAST_EXACT / faster sgemm alone     target >= 4 with a bf16 screen (AMX or
#                                       AVX512-BF16), >= 2 with the AVX2 int16 one
#   screen GEMM alone / sgemm           the ceiling of the screened approach
#   FAST_EXACT rows identical to F32    target 1 (bit for bit)
#   gRPC loopback / in-process          (when encode_bench_grpc is built)
#
# Usage: bench/run_encode_bench.sh [--tokens=4096] [--reps=5] [--warmup=1]
#                                  [--shape=2304x16384_k64]
# OpenBLAS does not recognise every CPU (0.3.21 runs its SSE3 "Prescott"
# kernels on Sapphire Rapids): encode_bench runs once more with
# OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2), and the faster sgemm
# of the two runs is the reference.
# Environment: BUILD_DIR (default build, the dev.sh build; relative to the repo root),
#   ROUNDS (default 1: each round runs C++ then torch; the best round counts),
#   OUT_DIR (default: a fresh temporary directory; JSON files are kept there).
# Build first:
#   bash deploy/dev.sh build   (builds encode_bench and encode_bench_grpc into ./build)
# The machine should be otherwise idle: the report prints the load average.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
ROUNDS="${ROUNDS:-1}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/saedict-encode-bench.XXXXXX)}"
PY=/usr/bin/python3  # Debian's python3-torch; a pyenv python3 has no torch

CPP_ARGS=()
PY_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --tokens=*|--reps=*|--warmup=*) CPP_ARGS+=("$arg"); PY_ARGS+=("$arg") ;;
    --shape=*) CPP_ARGS+=("$arg") ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

BENCH="$BUILD_DIR/bench/encode_bench"
GRPC_BENCH="$BUILD_DIR/bench/encode_bench_grpc"
if [[ ! -x "$BENCH" ]]; then
  echo "missing $BENCH; build it: ninja -C $BUILD_DIR encode_bench" >&2
  exit 1
fi
mkdir -p "$OUT_DIR"
echo "results in $OUT_DIR" >&2

# Which oneDNN implementation and ISA the BF16 path runs on (a tiny run).
ONEDNN_VERBOSE=1 DNNL_VERBOSE=1 "$BENCH" --tokens=16 --reps=1 --warmup=0 \
  --shape=64x256x8 --json="$OUT_DIR/probe.json" >"$OUT_DIR/onednn_verbose.txt" 2>/dev/null || true

for ((round = 1; round <= ROUNDS; round++)); do
  echo "== round $round/$ROUNDS: encode_bench" >&2
  "$BENCH" "${CPP_ARGS[@]}" --json="$OUT_DIR/cpp_$round.json"
  if [[ -x "$GRPC_BENCH" ]]; then
    echo "== round $round/$ROUNDS: encode_bench_grpc" >&2
    "$GRPC_BENCH" "${CPP_ARGS[@]}" --json="$OUT_DIR/grpc_$round.json"
  fi
  if grep -q avx512f /proc/cpuinfo; then CORETYPE=SkylakeX; else CORETYPE=Haswell; fi
  echo "== round $round/$ROUNDS: encode_bench with OPENBLAS_CORETYPE=$CORETYPE" >&2
  OPENBLAS_CORETYPE=$CORETYPE "$BENCH" "${CPP_ARGS[@]}" --json="$OUT_DIR/cpp_${round}_$CORETYPE.json"
  echo "== round $round/$ROUNDS: torch_encode.py" >&2
  "$PY" "$ROOT/bench/torch_encode.py" "${PY_ARGS[@]}" >"$OUT_DIR/torch_$round.json"
done

"$PY" - "$OUT_DIR" "$ROUNDS" <<'EOF'
import glob, json, os, re, sys

out_dir, rounds = sys.argv[1], int(sys.argv[2])

def load(prefix):
    paths = sorted(glob.glob(os.path.join(out_dir, prefix + "_*.json")))
    return [json.load(open(p)) for p in paths]

def merge_cpp(runs):
    """shape name -> {"modes": {mode: best/median tok/s over rounds}, "metrics": {...}}"""
    merged = {}
    for run in runs:
        for s in run["shapes"]:
            m = merged.setdefault(s["shape"], {"d_in": s["d_in"], "d_sae": s["d_sae"], "k": s["k"],
                                               "modes": {}, "metrics": {}})
            for name, t in s["modes"].items():
                old = m["modes"].get(name)
                if old is None or t["best_tok_s"] > old["best_tok_s"]:
                    m["modes"][name] = t
            m["metrics"].update(s["metrics"])
    return merged

cpp = merge_cpp(load("cpp") + load("grpc"))
torch = {}
for run in load("torch"):
    for s in run["shapes"]:
        key = "%dx%d_k%d" % (s["d_in"], s["d_sae"], s["k"])
        t = torch.setdefault(key, {})
        for mode, v in s.items():
            if isinstance(v, dict) and "best_tok_s" in v:
                if mode not in t or v["best_tok_s"] > t[mode]["best_tok_s"]:
                    t[mode] = v

impls = set()
verbose = os.path.join(out_dir, "onednn_verbose.txt")
if os.path.exists(verbose):
    for line in open(verbose):
        f = line.split(",")
        if len(f) > 5 and f[1] == "exec" and f[3] == "matmul":
            impls.add(f[4])
        if len(f) > 3 and f[1] == "info" and f[2] == "cpu" and f[3].startswith("isa:"):
            print("oneDNN", f[3].strip())
print("oneDNN matmul implementation:", ", ".join(sorted(impls)) or "none (BF16 unavailable)")
print("load average at start of run: %s" % (load("cpp")[0]["loadavg"] if load("cpp") else "?"))

def tok(d, mode):
    v = d.get(mode)
    return v["best_tok_s"] if v else None

def ratio(a, b):
    return a / b if a and b else None

def show(label, value, target=None, fmt="%.2f"):
    if value is None:
        print("  %-34s n/a" % label)
        return
    verdict = ""
    if target is not None:
        verdict = "  (target >= %s: %s)" % (target, "PASS" if value >= target else "MISS")
    print("  %-34s " % label + fmt % value + verdict)

for shape, m in cpp.items():
    modes, t = m["modes"], torch.get(shape, {})
    print("\n%s (d_in=%d d_sae=%d k=%d), best tokens/s:" % (shape, m["d_in"], m["d_sae"], m["k"]))
    for name in ["gemm_f32", "gemm_f32_tiled", "gemm_invariant", "encode_f32_blas", "encode_f32",
                 "encode_fast_exact", "screen_gemm", "encode_bf16", "bf16_matmul",
                 "grpc_encode_f32", "grpc_encode_bf16"]:
        if name in modes:
            print("  %-34s %10.0f   (median %.0f)" % (name, modes[name]["best_tok_s"],
                                                    modes[name]["median_tok_s"]))
    for name, v in sorted(t.items()):
        print("  %-34s %10.0f   (median %.0f)" % ("torch_" + name, v["best_tok_s"],
                                                    v["median_tok_s"]))
    print(" ratios:")
    show("in-process F32 / torch F32", ratio(tok(modes, "encode_f32"), tok(t, "f32")), 1.1)
    gemm = max([v for v in (tok(modes, "gemm_f32"), tok(modes, "gemm_f32_tiled")) if v] or [0])
    show("in-process F32 / faster sgemm alone", ratio(tok(modes, "encode_f32"), gemm), 0.9)
    show("in-process F32 / one-call sgemm", ratio(tok(modes, "encode_f32"), tok(modes, "gemm_f32")))
    show("invariant F32 / pre-invariant F32",
         ratio(tok(modes, "encode_f32"), tok(modes, "encode_f32_blas")), 0.9)
    show("invariant GEMM / sgemm tiled", ratio(tok(modes, "gemm_invariant"),
                                               tok(modes, "gemm_f32_tiled")))
    show("selections equal to pre-invariant", m["metrics"].get("blas_agreement"), None, "%.5f")
    show("in-process BF16 / torch F32", ratio(tok(modes, "encode_bf16"), tok(t, "f32")), 3)
    torch_bf16 = [v for v in (tok(t, "bf16_autocast"), tok(t, "bf16_weights")) if v]
    best_torch_bf16 = max(torch_bf16 or [0])
    show("in-process BF16 / best torch BF16", ratio(tok(modes, "encode_bf16"), best_torch_bf16))
    show("in-process BF16 / Bf16Matmul alone",
         ratio(tok(modes, "encode_bf16"), tok(modes, "bf16_matmul")))
    show("Bf16Matmul alone / faster sgemm", ratio(tok(modes, "bf16_matmul"), gemm))
    # Same-run ratio from encode_bench_grpc when it reports one.
    show("gRPC F32 / in-process F32", m["metrics"].get("grpc_over_inprocess") or
         ratio(tok(modes, "grpc_encode_f32"), tok(modes, "encode_f32")))
    show("BF16 selections identical to F32", m["metrics"].get("bf16_agreement"), 0.99, "%.4f")
    fast = tok(modes, "encode_fast_exact")
    bf16_screen = m["metrics"].get("fast_exact_bf16_screen", 0) == 1
    show("FAST_EXACT / faster sgemm alone", ratio(fast, gemm), 4 if bf16_screen else 2)
    # The ceiling of the screen's approach: its GEMM alone, same run.
    show("screen GEMM alone / faster sgemm", ratio(tok(modes, "screen_gemm"), gemm))
    show("FAST_EXACT / in-process F32", ratio(fast, tok(modes, "encode_f32")))
    show("FAST_EXACT / torch F32", ratio(fast, tok(t, "f32")))
    show("FAST_EXACT rows identical to F32", m["metrics"].get("fast_exact_identical_rows"), 1,
         "%.5f")
    show("FAST_EXACT fallback rate", m["metrics"].get("fast_exact_fallback_rate"), None, "%.4f")
    show("FAST_EXACT candidates per row", m["metrics"].get("fast_exact_candidates_per_row"), None,
         "%.1f")
    show("FAST_EXACT 8-wide blocks per row", m["metrics"].get("fast_exact_blocks_per_row"), None,
         "%.1f")
    show("FAST_EXACT memory (MiB)", m["metrics"].get("fast_exact_mib"), None, "%.1f")
    show("FAST_EXACT extra load time (s)", m["metrics"].get("fast_exact_create_extra_s"), None,
         "%.2f")
EOF
