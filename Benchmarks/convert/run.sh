#!/usr/bin/env bash
# Side-by-side benchmark: `ctrkit convert` vs the script a user writes today
# (Benchmarks/peers/pandas_tf_convert.py: pandas + per-row tf.train.Example + TFRecordWriter),
# both converting the same SYNTHETIC Criteo-layout TSV (from `ctrkit synth`) into GZIP shards,
# rows in input order, split into SHARDS equal ranges.
#
# Environment (defaults in brackets):
#   ROWS     rows to generate [1000000]        RUNS    runs of each tool; medians are reported [3]
#   SHARDS   output shards [8]                  THREADS ctrkit worker threads [all cores]
#   SCRATCH  scratch directory, outside the repository [/tmp/ctrkit-bench-convert]
#   PYTHON   a Python with tensorflow-cpu and pandas [/root/venvs/tf/bin/python]
#   CTRKIT   the ctrkit binary [.build/release/ctrkit, built if missing]
#   VERIFY   1: check that both outputs hold exactly the input rows [1]
# Prints input MB/s, wall seconds and peak RSS per tool (medians), and the throughput ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
SHARDS=${SHARDS:-8}
SCRATCH=${SCRATCH:-/tmp/ctrkit-bench-convert}
PYTHON=${PYTHON:-/root/venvs/tf/bin/python}
CTRKIT=${CTRKIT:-.build/release/ctrkit}
VERIFY=${VERIFY:-1}
THREADS=${THREADS:-$(nproc)}

. Benchmarks/lib.sh
bench_scratch
bench_ctrkit
bench_need_time
"$PYTHON" -c "import tensorflow, pandas" 2>/dev/null || bench_fail "$PYTHON lacks tensorflow or pandas"

input="$SCRATCH/criteo-synthetic-$ROWS.tsv"
if [ ! -s "$input" ]; then
  echo "== generating $ROWS SYNTHETIC Criteo-layout rows -> $input"
  "$CTRKIT" synth --rows "$ROWS" --output "$input" --seed 1
fi
bytes=$(stat -c %s "$input")
echo "== input: $ROWS rows, $bytes bytes; $SHARDS GZIP shards; $RUNS run(s) each; ctrkit threads: $THREADS"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One timed run: prints "wall_seconds peak_rss_kb" (from /usr/bin/time).
timed() {
  local log="$SCRATCH/time.log"
  /usr/bin/time -f "%e %M" -o "$log" "$@" > "$SCRATCH/stdout.log" 2> "$SCRATCH/stderr.log" || {
    cat "$SCRATCH/stderr.log" >&2; exit 1; }
  tail -n 1 "$log"
}

ours_wall=(); ours_rss=(); peer_wall=(); peer_rss=(); peer_inner=()
for run in $(seq "$RUNS"); do
  rm -rf "$SCRATCH/ctrkit-out"
  read -r w m < <(timed "$CTRKIT" convert --input "$input" --format criteo --output "$SCRATCH/ctrkit-out" \
    --shards "$SHARDS" --compression gzip --threads "$THREADS")
  ours_wall+=("$w"); ours_rss+=("$m")
  echo "   ctrkit convert      run $run: ${w} s, peak RSS ${m} KB"

  rm -rf "$SCRATCH/peer-out"
  read -r w m < <(timed "$PYTHON" Benchmarks/peers/pandas_tf_convert.py "$input" "$SCRATCH/peer-out" --shards "$SHARDS")
  inner=$("$PYTHON" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["seconds"])' "$SCRATCH/stdout.log")
  peer_wall+=("$w"); peer_rss+=("$m"); peer_inner+=("$inner")
  echo "   pandas + tf.train   run $run: ${w} s (${inner} s after imports), peak RSS ${m} KB"
done

ow=$(printf '%s\n' "${ours_wall[@]}" | median); om=$(printf '%s\n' "${ours_rss[@]}" | median)
pw=$(printf '%s\n' "${peer_wall[@]}" | median); pm=$(printf '%s\n' "${peer_rss[@]}" | median)
pi=$(printf '%s\n' "${peer_inner[@]}" | median)
ours_size=$(cat "$SCRATCH"/ctrkit-out/part-*.tfrecord.gz | wc -c)
peer_size=$(cat "$SCRATCH"/peer-out/part-*.tfrecord.gz | wc -c)

if [ "$VERIFY" = 1 ]; then
  echo "== verifying that both outputs hold exactly the input rows (records cat --format tsv)"
  want=$(sha256sum < "$input")
  got_ours=$("$CTRKIT" records cat --format tsv --schema criteo "$SCRATCH"/ctrkit-out/part-*.tfrecord.gz | sha256sum)
  got_peer=$("$CTRKIT" records cat --format tsv --schema criteo "$SCRATCH"/peer-out/part-*.tfrecord.gz | sha256sum)
  [ "$got_ours" = "$want" ] || { echo "ctrkit output differs from the input" >&2; exit 1; }
  [ "$got_peer" = "$want" ] || { echo "peer output differs from the input" >&2; exit 1; }
  echo "   both outputs equal the input, row for row"
fi

awk -v b="$bytes" -v ow="$ow" -v om="$om" -v pw="$pw" -v pm="$pm" -v pi="$pi" -v os="$ours_size" -v ps="$peer_size" \
    -v rows="$ROWS" -v runs="$RUNS" -v shards="$SHARDS" -v threads="$THREADS" 'BEGIN {
  printf "\n%-34s %10s %12s %12s %12s\n", "", "input MB/s", "wall s", "peak RSS MB", "output MB"
  printf "%-34s %10.1f %12.2f %12.1f %12.1f\n", "ctrkit convert (isal level 1)", b / 1e6 / ow, ow, om / 1024, os / 1e6
  printf "%-34s %10.1f %12.2f %12.1f %12.1f\n", "pandas + tf.train.Example (wall)", b / 1e6 / pw, pw, pm / 1024, ps / 1e6
  printf "%-34s %10.1f %12.2f\n", "pandas + tf.train.Example (no imports)", b / 1e6 / pi, pi
  printf "\nthroughput ratio: %.1fx (against the peer without its import time: %.1fx)\n", pw / ow, pi / ow
  printf "{\"rows\": %d, \"runs\": %d, \"shards\": %d, \"threads\": %d, \"input_bytes\": %d, \"ctrkit_mb_per_s\": %.2f, \"ctrkit_peak_rss_kb\": %d, \"peer_mb_per_s\": %.2f, \"peer_mb_per_s_without_imports\": %.2f, \"peer_peak_rss_kb\": %d, \"ratio\": %.2f, \"ratio_without_peer_imports\": %.2f}\n",
    rows, runs, shards, threads, b, b / 1e6 / ow, om, b / 1e6 / pw, b / 1e6 / pi, pm, pw / ow, pi / ow
}'
