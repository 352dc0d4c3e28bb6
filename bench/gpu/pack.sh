#!/usr/bin/env bash
# Builds, on this (Debian 12, no GPU) machine, everything bench/gpu/run_hopper.sh
# runs on a Hopper GPU machine (H100/H200) that has no package registry and
# none of the build's dependencies, and packs it into .hopper/bundle.tar.xz:
#   bin/engine_cuda_encoder_test  the `gpu` correctness tests (CUDA backend vs CPU)
#   bin/gpu_encode_bench    in-process CUDA encode, cuBLAS GEMM alone, worker e2e
#   bin/saedict-worker      the worker, for the end-to-end run (--backend=cuda)
#   lib/                    every shared library they need that is not glibc,
#                           the C++ runtime or CUDA's own (those come from the
#                           GPU machine: its driver and CUDA 13 cuBLAS)
# The CUDA code is compiled for sm_90a (Hopper machine code, plus compute_90
# PTX) by nvcc at /usr/local/cuda; host code without -march=native
# (SAEDICT_NATIVE=OFF) so it runs on whatever x86-64 CPU the GPU machine has.
#
# Usage: bash bench/gpu/pack.sh      (then, on the GPU machine, with .hopper
#        carried: bash bench/gpu/run_hopper.sh)
# Environment: BUILD_DIR (default build-hopper; a first build takes ~15 min
# on 2 cores, later ones are incremental and ccache-backed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build-hopper}"
BUNDLE="$ROOT/.hopper"
if [[ ! -x /usr/local/cuda/bin/nvcc ]] && ! command -v nvcc >/dev/null; then
  echo "pack.sh: no nvcc (CUDA toolkit at /usr/local/cuda): cannot build the CUDA backend" >&2
  exit 1
fi
# .hopper/ is in .gitignore: the device tool carries it when named in `carry`.
# No oneDNN (40 MB, and the bench's CPU reference is F32 only). The CUDA
# architectures are the project's default: sm_90a SASS + compute_90 PTX.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAEDICT_NATIVE=OFF \
  -DSAEDICT_CUDA=ON -DCMAKE_DISABLE_FIND_PACKAGE_dnnl=ON >/dev/null
if ! cmake --build "$BUILD_DIR" --target help | grep -q '^gpu_encode_bench:'; then
  echo "pack.sh: the configure step found no usable CUDA toolkit (see cmake's 'CUDA backend' line)" >&2
  exit 1
fi
cmake --build "$BUILD_DIR" --target engine_cuda_encoder_test gpu_encode_bench saedict-worker -j"$(nproc)"

stage="$(mktemp -d /tmp/saedict-hopper-stage.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for target in engine_cuda_encoder_test gpu_encode_bench saedict-worker; do
  file="$(find "$BUILD_DIR" -type f -name "$target" -perm -u+x | head -1)"
  [[ -n "$file" ]] || { echo "pack.sh: $target was not built" >&2; exit 1; }
  cp "$file" "$stage/bin/"
  strip --strip-debug "$stage/bin/$target"
done
# The Hopper machine code must be in the binaries, not PTX alone.
if command -v /usr/local/cuda/bin/cuobjdump >/dev/null; then
  /usr/local/cuda/bin/cuobjdump --list-elf "$stage/bin/gpu_encode_bench" | grep -q sm_90a ||
    { echo "pack.sh: no sm_90a machine code in gpu_encode_bench" >&2; exit 1; }
fi
# Shared libraries, minus what the GPU machine must provide itself.
system='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s|libcuda\.|libcublas|libcublasLt|libcudart|libnvidia)'
for bin in "$stage"/bin/*; do
  ldd "$bin" | awk '/=> \// {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ "$name" =~ $system ]] && continue
  cp -L "$path" "$stage/lib/$name"
done
{
  echo "saedict $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes') packed $(date -u +%FT%TZ)"
  echo "nvcc: $(/usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "built on: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
} >"$stage/MANIFEST"
mkdir -p "$BUNDLE"
tar -C "$stage" -cJf "$BUNDLE/bundle.tar.xz" .
size=$(stat -c %s "$BUNDLE/bundle.tar.xz")
echo "pack.sh: $BUNDLE/bundle.tar.xz, $((size / 1048576)) MiB ($(ls "$stage/lib" | wc -l) libraries)"
if ((size > 56 * 1048576)); then
  echo "pack.sh: over the 56 MiB the device tool carries beside the tree" >&2
  exit 1
fi
