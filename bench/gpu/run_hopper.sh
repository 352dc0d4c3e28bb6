#!/usr/bin/env bash
# The GPU check, as one command on a machine with one NVIDIA Hopper GPU
# (H100/H200, CUDA 13 driver) and no package registry. It brings what it
# needs as files: .hopper/bundle.tar.xz, made here by bench/gpu/pack.sh (the
# sm_90a build and every library it needs; the machine provides only glibc,
# the C++ runtime, the driver and CUDA 13's cuBLAS). It runs, in at most 9.5
# minutes all told:
#   1. the `gpu` correctness tests (CUDA backend vs the CPU engine)
#   2. gpu_encode_bench, both shapes: CUDA F32/BF16 encode, cuBLAS GEMM alone
#   3. the same through the worker protocol: saedict-worker --backend=cuda
#   4. torch on the same GPU (the machine's python3), same shapes and modes
#   5. the ratios against the issue's targets (>= 1.5x torch, >= 70% of the
#      GEMM alone for BF16) in summary.txt
# and writes its results as files into $OUT (8 files):
#   machine.txt gpu_tests.xml gpu_tests.log gpu_bench.json gpu_worker.json
#   torch_gpu.json bench.log summary.txt
#
# Here:   bash bench/gpu/pack.sh
# There:  bash bench/gpu/run_hopper.sh     (device tool: carry [".hopper"])
# Environment: OUT (default ./hopper-out), TOKENS (default 16384),
#   WORKER_BACKEND (default cuda; cpu tries step 3's mechanics on a machine
#   without a GPU).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/hopper-out}"
TOKENS="${TOKENS:-16384}"
WORKER_BACKEND="${WORKER_BACKEND:-cuda}"
mkdir -p "$OUT"
bundle="$ROOT/.hopper/bundle.tar.xz"
if [[ ! -f "$bundle" ]]; then
  echo "run_hopper.sh: no $bundle; run bash bench/gpu/pack.sh first and carry .hopper" >&2
  exit 1
fi
B="$(mktemp -d /tmp/saedict-hopper.XXXXXX)"
tar -C "$B" -xJf "$bundle" || exit 1
# cuBLAS from the machine: the toolkit's, else the pip wheel's.
cublas_dirs=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib)
pip_cublas="$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)"
[[ -n "$pip_cublas" ]] && cublas_dirs+=("$pip_cublas")
export LD_LIBRARY_PATH="$B/lib:$(IFS=:; echo "${cublas_dirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
log="$OUT/bench.log"
: >"$log"
{
  cat "$B/MANIFEST"
  echo "--- nvidia-smi"; nvidia-smi 2>&1
  echo "--- lscpu"; lscpu 2>&1 | grep -E 'Model name|^CPU\(s\)|Flags' | cut -c1-200
  echo "--- libraries"; ldd "$B/bin/gpu_encode_bench" 2>&1 | grep -E 'cublas|not found'
} >"$OUT/machine.txt"
step() { echo "== $* ($(date -u +%T))" | tee -a "$log"; }

step "1. gpu tests"
timeout 100 "$B/bin/engine_cuda_encoder_test" --gtest_output="xml:$OUT/gpu_tests.xml" \
  >"$OUT/gpu_tests.log" 2>&1
echo "gpu tests: exit $?" | tee -a "$log"
tail -3 "$OUT/gpu_tests.log" | tee -a "$log"

step "2. in-process bench"
timeout 200 "$B/bin/gpu_encode_bench" --tokens="$TOKENS" --json="$OUT/gpu_bench.json" 2>>"$log"
echo "gpu_encode_bench: exit $?" | tee -a "$log"

step "3. through the worker protocol"
"$B/bin/saedict-worker" --backend="$WORKER_BACKEND" --port=0 --port_file="$B/port" --cache_dir="$B/wcache" \
  --metrics_port=-1 --max_message_bytes=1073741824 2>>"$log" &
worker=$!
for _ in $(seq 300); do
  [[ -s "$B/port" ]] && break
  kill -0 "$worker" 2>/dev/null || break  # it exited (see bench.log)
  sleep 0.1
done
if [[ -s "$B/port" ]]; then
  timeout 100 "$B/bin/gpu_encode_bench" --tokens="$TOKENS" --shape=2304x16384_k64 \
    --only_worker=true --worker="127.0.0.1:$(cat "$B/port")" --json="$OUT/gpu_worker.json" \
    2>>"$log"
  echo "worker bench: exit $?" | tee -a "$log"
else
  echo "saedict-worker did not start (see bench.log)" | tee -a "$log"
fi
kill -TERM "$worker" 2>/dev/null
wait "$worker" 2>/dev/null

step "4. torch on the same GPU"
PYTHONUNBUFFERED=1 timeout 120 python3 "$ROOT/bench/gpu/torch_gpu_encode.py" --tokens="$TOKENS" \
  >"$OUT/torch_gpu.json" 2>>"$log"
echo "torch: exit $?" | tee -a "$log"

step "5. summary"
python3 "$ROOT/bench/gpu/summarize_hopper.py" "$OUT" | tee "$OUT/summary.txt"
rm -rf "$B"
