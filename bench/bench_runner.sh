# Sourced by bench/run_<name>_bench.sh: builds one benchmark binary and runs
# it with the script's arguments, keeping its report in OUT_DIR.
#   run_bench NAME HEADER_LINES "$@"
# NAME: the executable under $BUILD_DIR/bench (index_bench, compare_bench);
# HEADER_LINES: the sed range of the calling script's header that --help
# prints ("2,27"). Environment: BUILD_DIR (default build; relative to the repo
# root), OUT_DIR (default a fresh temporary directory), NO_BUILD=1, JOBS
# (ninja -j, default 2). The report goes to stdout and OUT_DIR/NAME.txt, the
# JSON to OUT_DIR/NAME.json, progress (stderr) also to OUT_DIR/NAME.stderr.

run_bench() {
  local name="$1" header="$2"
  shift 2
  local script="${BASH_SOURCE[1]}"
  local root
  root="$(cd "$(dirname "$script")/.." && pwd)"
  local build_dir="${BUILD_DIR:-build}"
  [[ "$build_dir" = /* ]] || build_dir="$root/$build_dir"
  local out_dir="${OUT_DIR:-$(mktemp -d "/tmp/saedict-${name//_/-}.XXXXXX")}"
  local bench="$build_dir/bench/$name"

  for arg in "$@"; do
    case "$arg" in
      -h|--help)  # no build, no run: the header and the bench's flags
        sed -n "${header}p" "$script"; echo
        if [[ -x "$bench" ]]; then
          "$bench" --help
        else
          echo "(build $bench for its flags: ninja -C $build_dir $name)"
        fi
        exit 0 ;;
    esac
  done

  if [[ "${NO_BUILD:-0}" != 1 ]]; then
    if [[ ! -f "$build_dir/build.ninja" ]]; then
      cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    ninja -C "$build_dir" -j"${JOBS:-2}" "$name" >&2
  fi
  if [[ ! -x "$bench" ]]; then
    echo "missing $bench; build it: ninja -C $build_dir $name" >&2
    exit 1
  fi
  mkdir -p "$out_dir"
  local reproduce="BUILD_DIR=$build_dir bash ${script#"$root"/} $*"
  echo "results in $out_dir; load average now: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  echo "CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" >&2
  echo "reproduce: $reproduce" >&2

  cd "$root"
  "$bench" --json="$out_dir/$name.json" "$@" 2> >(tee "$out_dir/$name.stderr" >&2) \
    | tee "$out_dir/$name.txt" || {
    local rc=$?
    echo "$name failed (rc $rc); its stderr is in $out_dir/$name.stderr" >&2
    exit "$rc"
  }
  echo "reproduce: $reproduce"
}
