#!/usr/bin/env bash
# Feature-transform and analyzer throughput on Criteo-like records:
#   * `ctrkit features bench --config criteo-bench.yaml --analyze-config criteo-analyze.yaml`:
#     the transform (13 numeric, 26 hashed categoricals, 3 crosses) timed from columns parsed beforehand,
#     and the analyzer (statistics + quantiles for I1..I13, vocabularies for C1..C26) end to end from TFRecord;
#   * `ctrkit analyze --config criteo-analyze.yaml` alone, for the analyzer's own wall time and peak RSS
#     (the bench process also holds every parsed batch in memory);
#   * for context (no requirement), the same transform in TensorFlow ops over cached parsed batches
#     (Benchmarks/peers/tf_feature_transform.py);
# on the records of the peer's generator (/work/shared/baselines/tf-read/gen_criteo_synth.py: nearly every
# categorical value unique, the worst case for vocabulary counting) and, with REALISTIC=1, on
# `ctrkit synth` rows converted to 4 uncompressed shards (Criteo-like value frequencies).
#
# Environment (defaults in brackets):
#   ROWS      records to generate [1000000]      RUNS     runs of everything; medians are reported [3]
#   THREADS   ctrkit threads [2]
#   INPUT     an existing uncompressed Criteo-like TFRecord, e.g. /root/data/criteo-synth-1m.tfrecord
#             [SCRATCH/criteo-synth-ROWS.tfrecord, generated with gen_criteo_synth.py]
#   SCRATCH   scratch directory, outside the repository [/tmp/ctrkit-bench-features]
#   CONFIG    transform config [Benchmarks/features/criteo-bench.yaml]
#   ANALYZE_CONFIG  analyzer config [Benchmarks/features/criteo-analyze.yaml]
#   ANALYZE_MIN_COUNT  if set, a copy of ANALYZE_CONFIG with this min_count is used (1 for small ROWS:
#             below ~300,000 generated records some categorical column has no value seen twice) []
#   REALISTIC 1: also time ROWS `ctrkit synth` rows converted to 4 shards [1]
#   PEER      1: also time the TensorFlow transform, for context [1]
#   PYTHON    a Python with tensorflow-cpu (generator, PEER) [/root/venvs/tf/bin/python]
#   PEER_DIR  folder of gen_criteo_synth.py [/work/shared/baselines/tf-read]
#   CTRKIT    the ctrkit binary [.build/release/ctrkit, built if missing]
# Prints median records/s and peak RSS (/usr/bin/time %M) per measurement; the last line is JSON.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
SCRATCH=${SCRATCH:-/tmp/ctrkit-bench-features}
CONFIG=${CONFIG:-Benchmarks/features/criteo-bench.yaml}
ANALYZE_CONFIG=${ANALYZE_CONFIG:-Benchmarks/features/criteo-analyze.yaml}
ANALYZE_MIN_COUNT=${ANALYZE_MIN_COUNT:-}
REALISTIC=${REALISTIC:-1}
PEER=${PEER:-1}
PYTHON=${PYTHON:-/root/venvs/tf/bin/python}
PEER_DIR=${PEER_DIR:-/work/shared/baselines/tf-read}
CTRKIT=${CTRKIT:-.build/release/ctrkit}
INPUT=${INPUT:-}

. Benchmarks/lib.sh
fail() { bench_fail "$@"; }
bench_scratch
bench_need_time
[ -f "$CONFIG" ] || fail "no transform config CONFIG=$CONFIG"
[ -f "$ANALYZE_CONFIG" ] || fail "no analyzer config ANALYZE_CONFIG=$ANALYZE_CONFIG"
if [ "$PEER" = 1 ] || [ -z "$INPUT" ]; then
  [ -x "$PYTHON" ] || command -v "$PYTHON" > /dev/null \
    || fail "PYTHON=$PYTHON not found (the TensorFlow virtualenv is missing; it generates INPUT and runs PEER=1)"
  "$PYTHON" -c "import tensorflow" 2> /dev/null || fail "PYTHON=$PYTHON cannot import tensorflow"
fi
bench_ctrkit
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}

if [ -z "$INPUT" ]; then
  INPUT="$SCRATCH/criteo-synth-$ROWS.tfrecord"
  if [ ! -s "$INPUT" ]; then
    [ -f "$PEER_DIR/gen_criteo_synth.py" ] || fail "no gen_criteo_synth.py in PEER_DIR=$PEER_DIR"
    echo "== generating $ROWS SYNTHETIC Criteo-like records -> $INPUT (gen_criteo_synth.py, slow: pure Python)"
    "$PYTHON" "$PEER_DIR/gen_criteo_synth.py" "$INPUT.tmp" "$ROWS" > /dev/null 2> "$SCRATCH/gen.log" \
      || { cat "$SCRATCH/gen.log" >&2; fail "gen_criteo_synth.py failed"; }
    mv "$INPUT.tmp" "$INPUT"
  fi
fi
[ -s "$INPUT" ] || fail "INPUT=$INPUT does not exist or is empty"
INPUT=$(realpath -- "$INPUT")

if [ -n "$ANALYZE_MIN_COUNT" ]; then
  sed "s/min_count: [0-9]*/min_count: $ANALYZE_MIN_COUNT/" "$ANALYZE_CONFIG" > "$SCRATCH/criteo-analyze.yaml"
  ANALYZE_CONFIG="$SCRATCH/criteo-analyze.yaml"
fi

realistic_files=()
if [ "$REALISTIC" = 1 ]; then
  rdir="$SCRATCH/realistic-$ROWS"
  if [ ! -s "$rdir/MANIFEST.json" ]; then
    echo "== generating $ROWS SYNTHETIC Criteo-layout rows (ctrkit synth --seed 1) -> 4 uncompressed shards in $rdir"
    rm -rf "$rdir" "$SCRATCH/realistic-$ROWS.tsv"
    "$CTRKIT" synth --rows "$ROWS" --output "$SCRATCH/realistic-$ROWS.tsv" --seed 1 > /dev/null
    "$CTRKIT" convert --input "$SCRATCH/realistic-$ROWS.tsv" --format criteo --output "$rdir" --shards 4 \
      --compression none --threads "$THREADS" > /dev/null
    rm -f "$SCRATCH/realistic-$ROWS.tsv"
  fi
  realistic_files=("$rdir"/part-*.tfrecord)
fi

median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.10g\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { tr ' ' '\n' <<< "$1" | grep . | median | xargs printf "%.0f\\n"; }
mx() { tr ' ' '\n' <<< "$1" | grep . | sort -g | tail -n 1; }

# One timed run: prints "wall_seconds peak_rss_kb" (from /usr/bin/time); stdout in SCRATCH/stdout.log.
timed() {
  local log="$SCRATCH/time.log"
  /usr/bin/time -f "%e %M" -o "$log" "$@" > "$SCRATCH/stdout.log" 2> "$SCRATCH/stderr.log" || {
    cat "$SCRATCH/stderr.log" >&2
    grep -q "fitted vocabulary is empty" "$SCRATCH/stderr.log" \
      && echo "(with few generated records no categorical value reaches min_count: try ANALYZE_MIN_COUNT=1)" >&2
    fail "failed: $*"; }
  tail -n 1 "$log"
}
# "records records_per_s" from a `features bench` line: "<what> (...): N records in T s median of R = X records/s ..."
bench_line() {
  sed -n "s/^$1 (.*): \([0-9]*\) records in [0-9.]* s median of [0-9]* = \([0-9]*\) records\/s.*/\1 \2/p" "$SCRATCH/stdout.log"
}

declare -A V   # name -> space-separated values of all runs
add() { V[$1]+="$2 "; }
# bench_set NAME FILES...: features bench (transform + analyzer) and ctrkit analyze alone on FILES.
bench_set() {
  local name=$1; shift
  local w m n t a
  read -r w m < <(timed "$CTRKIT" features bench --config "$CONFIG" --analyze-config "$ANALYZE_CONFIG" \
    --data "$@" --threads "$THREADS" --runs 1)
  read -r n t < <(bench_line transform) || fail "no transform line in the output of features bench"
  read -r _ a < <(bench_line analyze) || fail "no analyze line in the output of features bench"
  add "${name}_records" "$n"; add "${name}_transform" "$t"; add "${name}_analyze" "$a"; add "${name}_bench_rss" "$m"
  printf '   run %d %-9s features bench: transform %9.0f records/s, analyzer %9.0f records/s; process %6.2f s, peak RSS %7d KB\n' \
    "$run" "$name" "$t" "$a" "$w" "$m"
  read -r w m < <(timed "$CTRKIT" analyze --config "$ANALYZE_CONFIG" --data "$@" --threads "$THREADS" --json \
    --output "$SCRATCH/fitted-$name.yaml")
  a=$(jq -r '.records / .seconds | floor' "$SCRATCH/stdout.log")
  add "${name}_analyze_alone" "$a"; add "${name}_analyze_rss" "$m"; add "${name}_analyze_wall" "$w"
  printf '   run %d %-9s ctrkit analyze:                                  %9.0f records/s; process %6.2f s, peak RSS %7d KB\n' \
    "$run" "$name" "$a" "$w" "$m"
}
command -v jq > /dev/null || fail "needs jq"

echo "== input: $INPUT ($(stat -L -c %s "$INPUT") bytes)${realistic_files:+ and ${#realistic_files[@]} realistic shards in $rdir}; $RUNS run(s); threads: $THREADS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
load_start=$(cut -d' ' -f1 /proc/loadavg)
for run in $(seq "$RUNS"); do
  bench_set generated "$INPUT"
  if [ "$PEER" = 1 ]; then
    read -r w m < <(timed "$PYTHON" Benchmarks/peers/tf_feature_transform.py --file "$INPUT" --runs 1)
    t=$(tail -n 1 "$SCRATCH/stdout.log" | jq -r .records_per_s)
    add tf_transform "$t"; add tf_rss "$m"
    printf '   run %d %-9s TF ops over cached parsed batches: transform %9.0f records/s; process %6.2f s, peak RSS %7d KB\n' \
      "$run" generated "$t" "$w" "$m"
  fi
  if [ "$REALISTIC" = 1 ]; then bench_set realistic "${realistic_files[@]}"; fi
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

# Medians (RSS also as the maximum over runs), then the table and the JSON line.
declare -A M
for k in "${!V[@]}"; do M[$k]=$(med "${V[$k]}"); done
for k in generated_bench_rss generated_analyze_rss realistic_bench_rss realistic_analyze_rss tf_rss; do
  if [ -n "${V[$k]:-}" ]; then M[${k}_max]=$(mx "${V[$k]}"); fi
done
g() { echo "${M[$1]:-null}"; }
printf '\nmedians of %d run(s), %d threads\n' "$RUNS" "$THREADS"
printf '%-62s %12s %12s\n' "" "records/s" "peak RSS MB"
row() { [ "$2" = null ] || awk -v l="$1" -v r="$2" -v m="$3" 'BEGIN { if (m == "null") printf "%-62s %12.0f %12s\n", l, r, "-"; else printf "%-62s %12.0f %12.1f\n", l, r, m / 1024 }'; }
row "generated ($(g generated_records) records): transform, from parsed columns" "$(g generated_transform)" "$(g generated_bench_rss)"
row "generated: analyzer (features bench, end to end)" "$(g generated_analyze)" null
row "generated: ctrkit analyze alone" "$(g generated_analyze_alone)" "$(g generated_analyze_rss)"
row "generated: TF ops transform (context), cached parsed batches" "$(g tf_transform)" "$(g tf_rss)"
row "realistic ($(g realistic_records) records): transform, from parsed columns" "$(g realistic_transform)" "$(g realistic_bench_rss)"
row "realistic: analyzer (features bench, end to end)" "$(g realistic_analyze)" null
row "realistic: ctrkit analyze alone" "$(g realistic_analyze_alone)" "$(g realistic_analyze_rss)"
echo "(features bench RSS includes every parsed batch, held in memory for the transform timing)"
awk -v t="$(g generated_transform)" -v a="$(g generated_analyze)" -v p="$(g tf_transform)" 'BEGIN {
  printf "targets: transform >= 1,000,000 records/s: %.0f; analyzer >= 500,000 records/s: %.0f", t, a
  if (p != "null") printf "; transform vs TF ops: %.2fx", t / p
  printf "\n" }'
printf 'load average (1 min) at start %s, at end %s\n' "$load_start" "$load_end"
printf '{"runs": %d, "threads": %d, "generated": {"records": %s, "transform_records_per_s": %s, "analyzer_records_per_s": %s, "analyze_alone_records_per_s": %s, "bench_peak_rss_kb": %s, "bench_peak_rss_kb_max": %s, "analyze_peak_rss_kb": %s, "analyze_peak_rss_kb_max": %s, "tf_transform_records_per_s": %s, "tf_peak_rss_kb": %s, "tf_peak_rss_kb_max": %s}, "realistic": {"records": %s, "transform_records_per_s": %s, "analyzer_records_per_s": %s, "analyze_alone_records_per_s": %s, "bench_peak_rss_kb": %s, "bench_peak_rss_kb_max": %s, "analyze_peak_rss_kb": %s, "analyze_peak_rss_kb_max": %s}, "load1_start": %s, "load1_end": %s}\n' \
  "$RUNS" "$THREADS" "$(g generated_records)" "$(g generated_transform)" "$(g generated_analyze)" "$(g generated_analyze_alone)" \
  "$(g generated_bench_rss)" "$(g generated_bench_rss_max)" "$(g generated_analyze_rss)" "$(g generated_analyze_rss_max)" \
  "$(g tf_transform)" "$(g tf_rss)" "$(g tf_rss_max)" \
  "$(g realistic_records)" "$(g realistic_transform)" "$(g realistic_analyze)" "$(g realistic_analyze_alone)" \
  "$(g realistic_bench_rss)" "$(g realistic_bench_rss_max)" "$(g realistic_analyze_rss)" "$(g realistic_analyze_rss_max)" \
  "$load_start" "$load_end"
