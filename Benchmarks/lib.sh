# Shared by the benchmark scripts, sourced once they have changed to the repository root: the
# checks and set-up each of them needs, kept in one place so the scripts cannot drift apart.

# bench_fail MESSAGE: the message on standard error, named after the script, and exit 1.
bench_fail() { echo "$(basename "$(dirname "$0")")/$(basename "$0"): $*" >&2; exit 1; }

# bench_scratch: makes SCRATCH absolute, refuses one inside the repository (benchmark inputs are
# generated data and must never be committed) and creates it.
bench_scratch() {
  local repo
  repo=$(pwd -P)
  SCRATCH=$(realpath -m -- "$SCRATCH")
  case "$SCRATCH/" in "$repo"/*) bench_fail "SCRATCH ($SCRATCH) must be outside the repository ($repo)" ;; esac
  mkdir -p "$SCRATCH"
}

# bench_need_time: peak memory is measured with /usr/bin/time.
bench_need_time() { [ -x /usr/bin/time ] || bench_fail "needs /usr/bin/time (apt-get install time)"; }

# bench_ctrkit: builds the release binary when CTRKIT (default .build/release/ctrkit) is missing,
# and makes CTRKIT an absolute path.
bench_ctrkit() {
  CTRKIT=${CTRKIT:-.build/release/ctrkit}
  [ -x "$CTRKIT" ] || swift build -c release --product ctrkit
  [ -x "$CTRKIT" ] || bench_fail "no ctrkit binary at CTRKIT=$CTRKIT"
  CTRKIT=$(realpath -- "$CTRKIT")
}
