#!/usr/bin/env bash
# saedict developer entry point: the two README commands.
#
#   bash deploy/dev.sh run   [saedictd flags...]   install what is missing, build, start the server
#   bash deploy/dev.sh test  [ctest args...]       install what is missing (chromium and
#                                                   playwright-core for the browser test too),
#                                                   build, run every test
#   bash deploy/dev.sh build                        install what is missing, build
#   bash deploy/dev.sh fuzz  [SECONDS]              clang ASan+UBSan build (build-fuzz/), run each
#                                                   libFuzzer target SECONDS (default 60)
#   bash deploy/dev.sh sanitize [ctest args...]     ASan+UBSan build of everything (build-asan/),
#                                                   then the test suite in it
#   bash deploy/dev.sh slow                          the slow reliability suite: tests labelled
#                                                   `slow`, the kill -9 cycles test with
#                                                   SAEDICT_CRASH_CYCLES (200), the load test
#                                                   for SAEDICT_LOAD_SECONDS (600), `sanitize`, and
#                                                   each fuzzer for SAEDICT_FUZZ_SECONDS (300)
#
# Missing Debian packages are installed with apt-get when run as root (a
# non-root user gets the apt-get line to run). The build lives in ./build
# (override with SAEDICT_BUILD_DIR) and uses ccache when present, so a second
# run rebuilds only what changed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${SAEDICT_BUILD_DIR:-build}
JOBS=${SAEDICT_JOBS:-$(nproc)}

PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git ca-certificates
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev
  libabsl-dev librocksdb-dev libfaiss-dev prometheus-cpp-dev libssl-dev
  libopenblas-dev libdnnl-dev ocl-icd-opencl-dev opencl-c-headers zlib1g-dev
  libgtest-dev libgmock-dev
  libcpp-httplib-dev  # the HTTP gateway
  python3 python3-grpcio python3-numpy python3-pytest python3-protobuf
  python3-scipy  # tests: the exact assignment against scipy.optimize.linear_sum_assignment
  openssl        # tests: TLS certificates
  curl           # tests: the README's HTTP examples
  python3-yaml docker-compose  # tests: deployment files (docker-compose config, manifests)
  python3-pip python3-setuptools python3-wheel  # the saedict Python package: wheel, pip install
)

# promtool (tests: `promtool check metrics` / `check config`) comes from
# Debian's prometheus package, which also installs and starts a Prometheus
# server; only the promtool binary is extracted into $BUILD_DIR/tools/bin.
fetch_promtool() {
  local bin="$BUILD_DIR/tools/bin"
  [ -x "$bin/promtool" ] && return 0
  if command -v promtool >/dev/null 2>&1; then
    mkdir -p "$bin" && ln -sf "$(command -v promtool)" "$bin/promtool"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  if (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) &&
     dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"; then
    mkdir -p "$bin" && cp "$tmp/x/usr/bin/promtool" "$bin/promtool"
  else
    echo "saedict: could not fetch promtool (apt-get download prometheus); its tests will SKIP" >&2
  fi
  rm -rf "$tmp"
}

FUZZ_PACKAGES=(clang libclang-rt-14-dev)

# The dashboard's browser test (tests/browser): node, npm and Debian's
# chromium, then playwright-core from the npm registry (tests/browser/setup.sh,
# pinned by its package-lock.json). Each tool is installed only when its
# command is missing, so a node from elsewhere (with its own npm) is kept.
# Without them the browser test SKIPs visibly.
install_browser_test_tools() {
  local want=()
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
  if [ ${#want[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "saedict: installing ${want[*]} (the dashboard's browser test)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" \
        >/dev/null || echo "saedict: could not install ${want[*]}; the browser test will SKIP" >&2
    else
      echo "saedict: ${want[*]} missing (apt-get install ${want[*]}); the browser test will SKIP" >&2
    fi
  fi
  sh tests/browser/setup.sh || echo "saedict: npm ci failed; the browser test will SKIP" >&2
}

install_missing_packages() {
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "saedict: missing Debian packages: ${missing[*]}" >&2
    echo "run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "saedict: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  install_missing_packages
  fetch_promtool
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# The ASan + UBSan build of everything and the suite (minus `slow`) in it.
# Leak checking stays on; a sanitizer report fails the test that caused it.
sanitize() {
  install_missing_packages
  local dir=${SAEDICT_SANITIZE_BUILD_DIR:-build-asan} root=$PWD
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAEDICT_SANITIZE=ON
  fi
  cmake --build "$dir" -j "$JOBS"
  (cd "$dir" &&
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_odr_violation=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitizer/lsan.supp} \
    ctest --output-on-failure -j "$JOBS" --timeout 1800 -LE slow "$@")
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  build)
    build ;;
  run)
    build
    exec "$BUILD_DIR/server/saedictd" --data_dir=./var --dictionary_root=. "$@" ;;
  test)
    build
    install_browser_test_tools
    cd "$BUILD_DIR"
    exec ctest --output-on-failure -j "$JOBS" --timeout 600 -LE slow "$@" ;;
  sanitize)
    sanitize "$@" ;;
  slow)
    build
    (cd "$BUILD_DIR" &&
      ctest --output-on-failure -j "$JOBS" --timeout 3600 -L slow --no-tests=ignore &&
      SAEDICT_CRASH_CYCLES=${SAEDICT_CRASH_CYCLES:-200} \
        ctest --output-on-failure --timeout 3600 -R ManyKillNineCycles &&
      SAEDICT_LOAD_SECONDS=${SAEDICT_LOAD_SECONDS:-600} \
        ctest --output-on-failure --timeout 3600 -R LoadTest)
    sanitize
    exec bash "$0" fuzz "${SAEDICT_FUZZ_SECONDS:-300}" ;;
  fuzz)
    seconds=${1:-60}
    install_missing_packages "${FUZZ_PACKAGES[@]}"
    FUZZ_DIR=${SAEDICT_FUZZ_BUILD_DIR:-build-fuzz}
    cmake -S . -B "$FUZZ_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSAEDICT_FUZZ=ON \
      -DSAEDICT_FUZZ_SECONDS="$seconds" >/dev/null
    cmake --build "$FUZZ_DIR" -j "$JOBS" --target npy_fuzzer npz_fuzzer safetensors_fuzzer \
      json_fuzzer request_fuzzer
    cd "$FUZZ_DIR"
    exec ctest --output-on-failure -j "$JOBS" -L fuzz ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2 ;;
esac
