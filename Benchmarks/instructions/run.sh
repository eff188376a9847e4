#!/usr/bin/env bash
# Instruction counts (valgrind's cachegrind) of ctrkit's hot paths: the records parse and an LR
# training epoch from each kind of shard. Unlike timings on this shared 2-core machine, which swing by up to 2x between
# runs, an instruction count is the same on every run, so it shows whether a change to a hot loop
# did less work. It is not a speed: a loop that waits on memory gains little from fewer
# instructions (the gather, for one), so a change is kept only when alternated timings agree.
#
# Environment (defaults in brackets):
#   RECORDS   an uncompressed Criteo-like TFRecord file for the parse [/root/data/criteo-100k.tfrecord]
#   TRAIN     a training scratch folder of Benchmarks/train/run.sh: its first shard of each kind
#             (t/ transformed, tp/ packed ids, raw/ raw GZIP) with lr-ftrl-t.yaml, lr-ftrl-tp.yaml
#             and lr-ftrl.yaml [/tmp/ctrkit-bench-train]
#   SCRATCH   scratch directory, outside the repository [/tmp/ctrkit-bench-instructions]
#   CTRKIT    the ctrkit binary [.build/release/ctrkit, built if missing]
#   TOP       functions listed per measurement [8]
# Prints, per measurement, the program's total instructions and the TOP functions by instructions.
set -euo pipefail
cd "$(dirname "$0")/../.."
RECORDS=${RECORDS:-/root/data/criteo-100k.tfrecord}
TRAIN=${TRAIN:-/tmp/ctrkit-bench-train}
SCRATCH=${SCRATCH:-/tmp/ctrkit-bench-instructions}
TOP=${TOP:-8}

. Benchmarks/lib.sh
fail() { bench_fail "$@"; }
command -v valgrind > /dev/null || fail "needs valgrind (apt-get install valgrind)"
bench_scratch
bench_ctrkit
# Valgrind cannot read the DWARF of a Swift binary ("possibly corrupted debuginfo"); a copy
# without it keeps the symbol table, which is all the per-function counts need.
strip --strip-debug -o "$SCRATCH/ctrkit" "$CTRKIT"

# measure NAME COMMAND...: cachegrind's totals for one command, its output discarded.
measure() {
  local name=$1; shift
  local out="$SCRATCH/$name.cachegrind"
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$out" "$@" > /dev/null 2> "$SCRATCH/$name.log" \
    || { tail -5 "$SCRATCH/$name.log" >&2; fail "$name failed under valgrind (log: $SCRATCH/$name.log)"; }
  echo "== $name: $*"
  cg_annotate "$out" 2> /dev/null | grep -E "PROGRAM TOTALS"
  cg_annotate "$out" 2> /dev/null | grep -E '^ *[0-9,]+ \( *[0-9.]+%\) +[^ ]' | grep -v "PROGRAM TOTALS" | head -n "$TOP" \
    | sed -E 's/\?\?\?://; s/^( *[0-9,]+ \( *[0-9.]+%\) +.{0,110}).*/\1/' \
    || true  # `head` closing the pipe early is not a failure
}

if [ -s "$RECORDS" ]; then
  measure records-parse "$SCRATCH/ctrkit" records bench "$RECORDS" --runs 1 --threads 1
else
  echo "== records-parse: skipped, RECORDS=$RECORDS does not exist" >&2
fi
# epoch NAME CONFIG SHARD: one LR epoch from one shard of TRAIN (2 threads, as the benchmark).
# The raw shard's count includes reading fitted.yaml and writing the model's experiment.yaml
# (about 2.5G instructions for their inline vocabularies), outside the epoch: compare its
# functions, not its total.
epoch() {
  local name=$1 config=$2 shard=$3
  if [ -s "$TRAIN/$shard" ] && [ -s "$TRAIN/$config" ]; then
    rm -rf "$SCRATCH/model"
    (cd "$TRAIN" && measure "$name" "$SCRATCH/ctrkit" train --config "$config" \
      --train "$shard" --output "$SCRATCH/model" --epochs 1 --threads 2 --json)
  else
    echo "== $name: skipped, no $shard or $config in TRAIN=$TRAIN (run Benchmarks/train/run.sh first)" >&2
  fi
}
epoch lr-transformed-epoch lr-ftrl-t.yaml t/part-00000.tfrecord
epoch lr-packed-epoch lr-ftrl-tp.yaml tp/part-00000.tfrecord
epoch lr-raw-gzip-epoch lr-ftrl.yaml raw/part-00000.tfrecord.gz
