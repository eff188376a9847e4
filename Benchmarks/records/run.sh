#!/usr/bin/env bash
# Side-by-side benchmark: reading + parsing TFRecord tf.Examples, `ctrkit records bench` vs TensorFlow's
# TFRecordDataset(f).batch(1024).map(tf.io.parse_example) (the peer's own script,
# /work/shared/baselines/tf-read/time_tf_read.py, mode b_fixedlen), on the same SYNTHETIC Criteo-like
# records (label, I1..I13 int64, 20 % missing, default 0; C1..C26 8-byte strings), uncompressed and GZIP.
# Each run times, in this order, so that both tools see the same machine state:
#   TF NONE, ctrkit NONE, TF GZIP, ctrkit GZIP.
#
# Environment (defaults in brackets):
#   ROWS      records to generate when INPUT is not given [1000000]
#   RUNS      runs of each tool and compression; medians are reported [3]
#   THREADS   ctrkit parser threads (TF uses AUTOTUNE) [2]
#   INPUT     an existing uncompressed Criteo-like TFRecord, e.g. /root/data/criteo-synth-1m.tfrecord
#             [SCRATCH/criteo-synth-ROWS.tfrecord, generated with the peer's gen_criteo_synth.py]
#   INPUT_GZ  the same records, GZIP [INPUT.gz; generated next to a generated INPUT]
#   SCRATCH   scratch directory, outside the repository [/tmp/ctrkit-bench-records]
#   PYTHON    a Python with tensorflow-cpu [/root/venvs/tf/bin/python]
#   PEER_DIR  folder of time_tf_read.py and gen_criteo_synth.py [/work/shared/baselines/tf-read]
#   CTRKIT    the ctrkit binary [.build/release/ctrkit, built if missing]
#   PEER_FRAMING 1: also time TF's framing-only mode a_batch, to set beside ctrkit's framing + CRC [1]
#   VERIFY    1: check that INPUT and INPUT_GZ hold the same records (records cat) [1]
# Prints, per compression, median records/s of both tools, their ratio, ctrkit's framing + CRC GB/s
# and the peak RSS of both processes (/usr/bin/time %M); the last line is JSON.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-1000000}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
SCRATCH=${SCRATCH:-/tmp/ctrkit-bench-records}
PYTHON=${PYTHON:-/root/venvs/tf/bin/python}
PEER_DIR=${PEER_DIR:-/work/shared/baselines/tf-read}
CTRKIT=${CTRKIT:-.build/release/ctrkit}
PEER_FRAMING=${PEER_FRAMING:-1}
VERIFY=${VERIFY:-1}
INPUT=${INPUT:-}
INPUT_GZ=${INPUT_GZ:-}

. Benchmarks/lib.sh
fail() { bench_fail "$@"; }
bench_scratch
bench_need_time
[ -f "$PEER_DIR/time_tf_read.py" ] && [ -f "$PEER_DIR/gen_criteo_synth.py" ] \
  || fail "the peer scripts time_tf_read.py and gen_criteo_synth.py are not in PEER_DIR=$PEER_DIR"
[ -x "$PYTHON" ] || command -v "$PYTHON" > /dev/null || fail "PYTHON=$PYTHON not found (the TensorFlow virtualenv is missing)"
"$PYTHON" -c "import tensorflow" 2> /dev/null || fail "PYTHON=$PYTHON cannot import tensorflow"
bench_ctrkit
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}

# Input: the peer's generator, unless INPUT names an existing file. A file is generated under a
# temporary name and renamed, so an interrupted generation is never reused.
if [ -z "$INPUT" ]; then
  INPUT="$SCRATCH/criteo-synth-$ROWS.tfrecord"
  INPUT_GZ=${INPUT_GZ:-$INPUT.gz}
  if [ ! -s "$INPUT" ]; then
    echo "== generating $ROWS SYNTHETIC Criteo-like records -> $INPUT (gen_criteo_synth.py, slow: pure Python)"
    "$PYTHON" "$PEER_DIR/gen_criteo_synth.py" "$INPUT.tmp" "$ROWS" > /dev/null 2> "$SCRATCH/gen.log" \
      || { cat "$SCRATCH/gen.log" >&2; fail "gen_criteo_synth.py failed"; }
    mv "$INPUT.tmp" "$INPUT"
  fi
  if [ ! -s "$INPUT_GZ" ]; then
    echo "== generating the same records, GZIP -> $INPUT_GZ"
    "$PYTHON" "$PEER_DIR/gen_criteo_synth.py" "$INPUT_GZ.tmp" "$ROWS" --gzip > /dev/null 2> "$SCRATCH/gen.log" \
      || { cat "$SCRATCH/gen.log" >&2; fail "gen_criteo_synth.py --gzip failed"; }
    mv "$INPUT_GZ.tmp" "$INPUT_GZ"
  fi
fi
INPUT_GZ=${INPUT_GZ:-$INPUT.gz}
[ -s "$INPUT" ] || fail "INPUT=$INPUT does not exist or is empty"
[ -s "$INPUT_GZ" ] || fail "INPUT_GZ=$INPUT_GZ does not exist (gen_criteo_synth.py OUT N --gzip writes one)"
INPUT=$(realpath -- "$INPUT"); INPUT_GZ=$(realpath -- "$INPUT_GZ")
plain_bytes=$(stat -L -c %s "$INPUT"); gz_bytes=$(stat -L -c %s "$INPUT_GZ")

if [ "$VERIFY" = 1 ]; then
  echo "== verifying that $(basename "$INPUT") and $(basename "$INPUT_GZ") hold the same records"
  a=$("$CTRKIT" records cat --format tsv --schema criteo "$INPUT" | sha256sum)
  b=$("$CTRKIT" records cat --format tsv --schema criteo "$INPUT_GZ" | sha256sum)
  [ "$a" = "$b" ] || fail "$INPUT and $INPUT_GZ hold different records"
fi

# time_tf_read.py always times FILE and FILE.gz. To time one compression per process (and get that
# process's own peak RSS), each compression gets a folder where the other file is empty: an empty
# uncompressed file, or a valid GZIP stream of zero bytes. The peer reads them as 0 records.
peer_none="$SCRATCH/peer-none/criteo.tfrecord"; peer_gzip="$SCRATCH/peer-gzip/criteo.tfrecord"
rm -rf "$SCRATCH/peer-none" "$SCRATCH/peer-gzip"; mkdir -p "$SCRATCH/peer-none" "$SCRATCH/peer-gzip"
ln -s "$INPUT" "$peer_none"; gzip -c < /dev/null > "$peer_none.gz"
: > "$peer_gzip"; ln -s "$INPUT_GZ" "$peer_gzip.gz"
modes=b_fixedlen; [ "$PEER_FRAMING" = 1 ] && modes=b_fixedlen,a_batch

median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.10g\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { sort -g | tail -n 1; }
# jget FILE EXPR: evaluates EXPR on the JSON object j read from the last line of FILE (or all of it).
jget() {
  "$PYTHON" -c '
import json, sys
text = open(sys.argv[1]).read().strip()
try: j = json.loads(text)
except ValueError: j = json.loads(text.splitlines()[-1])
print(eval(sys.argv[2]))' "$1" "$2"
}

# One timed run: prints "wall_seconds peak_rss_kb" (from /usr/bin/time); stdout in SCRATCH/stdout.log.
timed() {
  local log="$SCRATCH/time.log"
  /usr/bin/time -f "%e %M" -o "$log" "$@" > "$SCRATCH/stdout.log" 2> "$SCRATCH/stderr.log" || {
    cat "$SCRATCH/stderr.log" >&2; fail "failed: $*"; }
  tail -n 1 "$log"
}

echo "== input: $INPUT ($plain_bytes bytes) and $INPUT_GZ ($gz_bytes bytes); $RUNS run(s); ctrkit threads: $THREADS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
load_start=$(cut -d' ' -f1 /proc/loadavg)
declare -A ours_rps ours_frame ours_rss ours_wall peer_rps peer_frame peer_rss peer_wall
records=""
for run in $(seq "$RUNS"); do
  for comp in NONE GZIP; do
    if [ "$comp" = NONE ]; then peer_file=$peer_none; our_file=$INPUT; other=GZIP
    else peer_file=$peer_gzip; our_file=$INPUT_GZ; other=NONE; fi

    read -r w m < <(timed "$PYTHON" "$PEER_DIR/time_tf_read.py" --file "$peer_file" --runs 1 --modes "$modes" \
      --out "$SCRATCH/peer.json")
    n=$(jget "$SCRATCH/peer.json" "j['runs']['b_fixedlen|$comp']['records']")
    empty=$(jget "$SCRATCH/peer.json" "j['runs']['b_fixedlen|$other']['records']")
    [ "$empty" = 0 ] || fail "the peer read $empty records from the empty $other companion file"
    rps=$(jget "$SCRATCH/peer.json" "j['runs']['b_fixedlen|$comp']['records_per_s']")
    peer_rps[$comp]+="$rps "; peer_rss[$comp]+="$m "; peer_wall[$comp]+="$w "
    note=""
    if [ "$PEER_FRAMING" = 1 ]; then
      # a_batch: framing + CRC (+ inflate) + batching; MB/s of the uncompressed record stream.
      f=$(jget "$SCRATCH/peer.json" "j['runs']['a_batch|$comp']['records_per_s'] * $plain_bytes / $n / 1e6")
      peer_frame[$comp]+="$f "; note=$(printf ", a_batch %.0f MB/s" "$f")
    fi
    printf '   run %d %-4s TF batch(1024).map(parse_example): %9.0f records/s%s; process %5.2f s, peak RSS %7d KB\n' \
      "$run" "$comp" "$rps" "$note" "$w" "$m"

    read -r w m < <(timed "$CTRKIT" records bench "$our_file" --spec criteo --threads "$THREADS" --runs 1 --json)
    cp "$SCRATCH/stdout.log" "$SCRATCH/ours.json"
    on=$(jget "$SCRATCH/ours.json" "j['records']")
    [ "$on" = "$n" ] || fail "ctrkit read $on records from $our_file, the peer $n"
    [ -z "$records" ] || [ "$records" = "$n" ] || fail "$comp holds $n records, NONE $records"
    records=$n
    rps=$(jget "$SCRATCH/ours.json" "j['parse_records_per_s']")
    f=$(jget "$SCRATCH/ours.json" "j['frame_stream_MB_per_s']")
    ours_rps[$comp]+="$rps "; ours_frame[$comp]+="$f "; ours_rss[$comp]+="$m "; ours_wall[$comp]+="$w "
    printf '   run %d %-4s ctrkit records bench (%d threads):   %9.0f records/s, framing + CRC %.0f MB/s; process %5.2f s, peak RSS %7d KB\n' \
      "$run" "$comp" "$THREADS" "$rps" "$f" "$w" "$m"
  done
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

med() { tr ' ' '\n' <<< "$1" | grep . | median; }
mx() { tr ' ' '\n' <<< "$1" | grep . | maximum; }
declare -A M
for comp in NONE GZIP; do
  M[ours_rps_$comp]=$(med "${ours_rps[$comp]}"); M[peer_rps_$comp]=$(med "${peer_rps[$comp]}")
  M[ours_frame_$comp]=$(med "${ours_frame[$comp]}"); M[peer_frame_$comp]=$(med "${peer_frame[$comp]:-0}")
  M[ours_rss_$comp]=$(med "${ours_rss[$comp]}"); M[peer_rss_$comp]=$(med "${peer_rss[$comp]}")
  M[ours_rss_max_$comp]=$(mx "${ours_rss[$comp]}"); M[peer_rss_max_$comp]=$(mx "${peer_rss[$comp]}")
  M[ours_wall_$comp]=$(med "${ours_wall[$comp]}"); M[peer_wall_$comp]=$(med "${peer_wall[$comp]}")
done

awk -v records="$records" -v runs="$RUNS" -v threads="$THREADS" -v pb="$plain_bytes" -v gb="$gz_bytes" \
    -v pf="$PEER_FRAMING" -v l0="$load_start" -v l1="$load_end" \
    -v orN="${M[ours_rps_NONE]}" -v prN="${M[peer_rps_NONE]}" -v orG="${M[ours_rps_GZIP]}" -v prG="${M[peer_rps_GZIP]}" \
    -v ofN="${M[ours_frame_NONE]}" -v pfN="${M[peer_frame_NONE]}" -v ofG="${M[ours_frame_GZIP]}" -v pfG="${M[peer_frame_GZIP]}" \
    -v omN="${M[ours_rss_NONE]}" -v pmN="${M[peer_rss_NONE]}" -v omG="${M[ours_rss_GZIP]}" -v pmG="${M[peer_rss_GZIP]}" \
    -v oxN="${M[ours_rss_max_NONE]}" -v pxN="${M[peer_rss_max_NONE]}" -v oxG="${M[ours_rss_max_GZIP]}" -v pxG="${M[peer_rss_max_GZIP]}" \
    -v owN="${M[ours_wall_NONE]}" -v pwN="${M[peer_wall_NONE]}" -v owG="${M[ours_wall_GZIP]}" -v pwG="${M[peer_wall_GZIP]}" '
function fr(x) { return pf == 1 ? sprintf("%12.2f", x / 1000) : sprintf("%12s", "-") }
BEGIN {
  printf "\nmedians of %d run(s), %d records (%d bytes uncompressed, %d bytes GZIP)\n", runs, records, pb, gb
  printf "%-44s %12s %12s %12s %12s\n", "", "records/s", "framing GB/s", "peak RSS MB", "process s"
  printf "%-44s %12.0f %12.2f %12.1f %12.2f\n", "NONE  ctrkit records bench (" threads " threads)", orN, ofN / 1000, omN / 1024, owN
  printf "%-44s %12.0f %s %12.1f %12.2f\n", "NONE  TF batch(1024).map(parse_example)", prN, fr(pfN), pmN / 1024, pwN
  printf "%-44s %12.0f %12.2f %12.1f %12.2f\n", "GZIP  ctrkit records bench (" threads " threads)", orG, ofG / 1000, omG / 1024, owG
  printf "%-44s %12.0f %s %12.1f %12.2f\n", "GZIP  TF batch(1024).map(parse_example)", prG, fr(pfG), pmG / 1024, pwG
  printf "\nread + parse ratio, NONE: %.2fx (target >= 6x)   GZIP: %.2fx (target >= 4x)\n", orN / prN, orG / prG
  printf "ctrkit framing + CRC, uncompressed: %.2f GB/s (target >= 2 GB/s); GZIP (with inflate): %.2f GB/s of uncompressed stream\n", ofN / 1000, ofG / 1000
  if (pf == 1) printf "TF framing (a_batch: TFRecordDataset.batch(1024)), same units: NONE %.2f GB/s, GZIP %.2f GB/s\n", pfN / 1000, pfG / 1000
  printf "load average (1 min) at start %s, at end %s\n", l0, l1
  printf "{\"records\": %d, \"runs\": %d, \"threads\": %d, \"input_bytes\": %d, \"input_gz_bytes\": %d, ", records, runs, threads, pb, gb
  printf "\"none\": {\"ctrkit_records_per_s\": %.0f, \"tf_records_per_s\": %.0f, \"ratio\": %.2f, \"ctrkit_framing_GB_per_s\": %.3f, \"tf_framing_GB_per_s\": %s, \"ctrkit_peak_rss_kb\": %d, \"ctrkit_peak_rss_kb_max\": %d, \"tf_peak_rss_kb\": %d, \"tf_peak_rss_kb_max\": %d}, ", orN, prN, orN / prN, ofN / 1000, pf == 1 ? sprintf("%.3f", pfN / 1000) : "null", omN, oxN, pmN, pxN
  printf "\"gzip\": {\"ctrkit_records_per_s\": %.0f, \"tf_records_per_s\": %.0f, \"ratio\": %.2f, \"ctrkit_framing_GB_per_s\": %.3f, \"tf_framing_GB_per_s\": %s, \"ctrkit_peak_rss_kb\": %d, \"ctrkit_peak_rss_kb_max\": %d, \"tf_peak_rss_kb\": %d, \"tf_peak_rss_kb_max\": %d}, ", orG, prG, orG / prG, ofG / 1000, pf == 1 ? sprintf("%.3f", pfG / 1000) : "null", omG, oxG, pmG, pxG
  printf "\"load1_start\": %s, \"load1_end\": %s}\n", l0, l1
}'
