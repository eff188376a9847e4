#!/usr/bin/env bash
# Quality on the synthetic Criteo-like task with known ground truth (../shared/tools/synth_clicklog.py,
# teacher-seed 1): the shipped configs (Examples/criteo/{lr-ftrl,fm}.yaml, 1 epoch) trained on ROWS
# rows of seed TRAIN_SEED and scored on the 200,000 test rows of seed 1. The task's README gives the
# oracle AUC (0.8001) and each model class's ceiling with unlimited data (LR 0.7626, FM 0.7816).
#
#   ROWS=2000000 TRAIN_SEED=2 Benchmarks/quality/synthetic/run.sh    # the issue's 2M setting
#   ROWS=10000000 TRAIN_SEED=3 Benchmarks/quality/synthetic/run.sh   # 10M rows (about 2.5 GB of TSV in SCRATCH)
#
# Environment: SCRATCH [/tmp/ctrkit-quality-synth], SHARED [../shared], CTRKIT [.build/release/ctrkit],
# THREADS [2]. Generated files are reused when present.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROWS=${ROWS:-2000000}
TRAIN_SEED=${TRAIN_SEED:-2}
THREADS=${THREADS:-2}
SCRATCH=${SCRATCH:-/tmp/ctrkit-quality-synth}
SHARED=$(realpath -m -- "${SHARED:-../shared}")
CTRKIT=${CTRKIT:-.build/release/ctrkit}
. Benchmarks/lib.sh
bench_scratch
bench_ctrkit
gen=$SHARED/tools/synth_clicklog.py
train=$SCRATCH/train_s${TRAIN_SEED}_$ROWS
[ -f "$train.tsv" ] || python3 "$gen" --rows "$ROWS" --seed "$TRAIN_SEED" --teacher-seed 1 --out "$train.tsv"
[ -f "$SCRATCH/test.tsv" ] || python3 "$gen" --rows 200000 --seed 1 --teacher-seed 1 --out "$SCRATCH/test.tsv"
[ -f "$train/MANIFEST.json" ] || "$CTRKIT" convert --input "$train.tsv" --format criteo --output "$train" --shards 16 --overwrite >/dev/null
[ -f "$SCRATCH/test/MANIFEST.json" ] || "$CTRKIT" convert --input "$SCRATCH/test.tsv" --format criteo --output "$SCRATCH/test" --shards 1 --overwrite >/dev/null
"$CTRKIT" analyze --config Examples/criteo/features.yaml --data "$train/part-*" --output "$train.fitted.yaml" --threads "$THREADS" >/dev/null
for model in lr-ftrl fm; do
  sed "s|^features: fitted.yaml|features: $train.fitted.yaml|" "Examples/criteo/$model.yaml" > "$SCRATCH/$model.yaml"
  rm -rf "$SCRATCH/model-$model"
  "$CTRKIT" train --config "$SCRATCH/$model.yaml" --train "$train/part-*" --output "$SCRATCH/model-$model" \
    --epochs 1 --threads "$THREADS" >/dev/null
  echo "== $model, $ROWS training rows (seed $TRAIN_SEED), test: 200,000 rows of seed 1"
  "$CTRKIT" eval --model "$SCRATCH/model-$model" --data "$SCRATCH/test/part-*" --checkpoint latest
done
