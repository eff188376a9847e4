#!/usr/bin/env bash
# Instruction counts (valgrind's cachegrind) of ctrkit's hot paths: the records parse and an LR
# training epoch. Unlike timings on this shared 2-core machine, which swing by up to 2x between
# runs, an instruction count is the same on every run, so it shows whether a change to a hot loop
# did less work. It is not a speed: a loop that waits on memory gains little from fewer
# instructions (the gather, for one), so a change is kept only when alternated timings agree.
#
# Environment (defaults in brackets):
#   RECORDS   an uncompressed Criteo-like TFRecord file for the parse [/root/data/criteo-100k.tfrecord]
#   TRAIN     a training scratch folder of Benchmarks/train/run.sh, whose transformed shard
#             t/part-00000.tfrecord and config lr-ftrl-t.yaml are used [/tmp/ctrkit-bench-train]
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
    | sed -E 's/\?\?\?://; s/^( *[0-9,]+ \( *[0-9.]+%\) +.{0,110}).*/\1/'
}

if [ -s "$RECORDS" ]; then
  measure records-parse "$SCRATCH/ctrkit" records bench "$RECORDS" --runs 1 --threads 1
else
  echo "== records-parse: skipped, RECORDS=$RECORDS does not exist" >&2
fi
if [ -s "$TRAIN/t/part-00000.tfrecord" ] && [ -s "$TRAIN/lr-ftrl-t.yaml" ]; then
  rm -rf "$SCRATCH/model"
  (cd "$TRAIN" && measure lr-transformed-epoch "$SCRATCH/ctrkit" train --config lr-ftrl-t.yaml \
    --train t/part-00000.tfrecord --output "$SCRATCH/model" --epochs 1 --threads 2 --json)
else
  echo "== lr-transformed-epoch: skipped, no transformed shard in TRAIN=$TRAIN (run Benchmarks/train/run.sh first)" >&2
fi
