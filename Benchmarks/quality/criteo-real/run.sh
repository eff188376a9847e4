#!/usr/bin/env bash
# Quality on held-out rows: CTRKit vs the PyTorch reference (shared/baselines/torch_ctr.py) on the
# real Criteo sample (shared/data/criteo: 7,200 train / 409 dev / 391 test rows, read in place).
# Both frameworks: the same rows, the same features (26 categoricals with a min-count-2 vocabulary,
# the 13 counts bucketized), LR and FM k=16, hyperparameters and epoch count chosen on dev over
# grids of the same size, then scored on test with 10 seeds. See README.md.
#
# Environment (defaults in brackets):
#   SCRATCH     scratch directory, outside the repository [/tmp/ctrkit-quality-criteo]
#   DATA        the staged Criteo files [<repo>/../shared/data/criteo]
#   BASELINES   the PyTorch reference scripts [<repo>/../shared/baselines]
#   PYTHON      a Python with torch, numpy, pandas, scikit-learn [/root/venvs/torch/bin/python]
#   CTRKIT      the ctrkit binary [.build/release/ctrkit, built if missing]
#   FEATURES    the feature config fitted by ctrkit analyze [Examples/criteo/features.yaml]
#   PHASE       all | tune | select | final | report [all]; results are appended to
#               SCRATCH/results/*.jsonl and runs already there are skipped (delete them to redo)
#   TUNE_SEEDS  [101,102,103]   FINAL_SEEDS [1,...,10]
#   DIAGNOSE    1: after PHASE=all, run diagnose.py (see its docstring) [1]
# Everything runs on one thread, one job at a time (ctrkit --threads 1 is deterministic;
# torch_ctr.py --threads 1). About 25 minutes on the 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/../../.."
repo=$PWD
here=Benchmarks/quality/criteo-real
SCRATCH=${SCRATCH:-/tmp/ctrkit-quality-criteo}
DATA=${DATA:-$repo/../shared/data/criteo}
BASELINES=${BASELINES:-$repo/../shared/baselines}
PYTHON=${PYTHON:-/root/venvs/torch/bin/python}
CTRKIT=${CTRKIT:-.build/release/ctrkit}
FEATURES=${FEATURES:-Examples/criteo/features.yaml}
PHASE=${PHASE:-all}
TUNE_SEEDS=${TUNE_SEEDS:-101,102,103}
FINAL_SEEDS=${FINAL_SEEDS:-1,2,3,4,5,6,7,8,9,10}

. Benchmarks/lib.sh
bench_scratch
bench_ctrkit
mkdir -p "$SCRATCH"/{data,ctrkit,torch,results}

echo "== inputs (sha256 as in shared/data/PROVENANCE.md)"
sha256sum -c <<EOF
2b0614035f6c931dc4ac2c1a1a26fa954f2b9231703f3a77bcdd53d9d9f29872  $DATA/wide-resdnn_criteo_train.tsv
7ac8a164e43a9903be3d43e640bcd464cfa0d96d7a652ec8ef8a33fe97cac6b9  $DATA/wide-resdnn_criteo_dev.tsv
3a7a78b694945482aede520e68300b0e2748603363072822cfbbb9f72d0dfd9a  $DATA/wide-resdnn_criteo_test.tsv
EOF

{
  echo "date: $(date -u +%FT%TZ)"
  echo "repo commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' + uncommitted changes under Sources/')"
  echo "ctrkit: $CTRKIT ($("$CTRKIT" --version)), sha256 $(sha256sum "$CTRKIT" | cut -c1-16)"
  echo "python: $("$PYTHON" -c 'import sys, torch, sklearn, numpy; print(sys.version.split()[0], "torch", torch.__version__, "sklearn", sklearn.__version__, "numpy", numpy.__version__)')"
  echo "torch_ctr.py sha256: $(sha256sum "$BASELINES/torch_ctr.py" | cut -c1-16); criteo_prep.py sha256: $(sha256sum "$BASELINES/criteo_prep.py" | cut -c1-16)"
  echo "features: $FEATURES"
} | tee "$SCRATCH/results/environment.txt"

echo "== ctrkit: convert each file (in place, no copies) to GZIP TFRecord, fit the features on train only"
for split in train dev test; do
  "$CTRKIT" convert --input "$DATA/wide-resdnn_criteo_$split.tsv" --format criteo --output "$SCRATCH/data/$split" \
    --compression gzip --threads 1 --overwrite
done
"$CTRKIT" analyze --config "$FEATURES" --data "$SCRATCH/data/train/*.tfrecord.gz" --output "$SCRATCH/ctrkit/fitted.yaml" --threads 1

echo "== PyTorch: criteo_prep.py two-file mode, min count 2 (vocabularies and buckets from train only)"
# dev+test for the combined secondary score: a concatenation in the scratch directory only.
cat "$DATA/wide-resdnn_criteo_dev.tsv" "$DATA/wide-resdnn_criteo_test.tsv" > "$SCRATCH/torch/devtest.tsv"
for split in dev test devtest; do
  if [ "$split" = devtest ]; then eval_file=$SCRATCH/torch/devtest.tsv; else eval_file=$DATA/wide-resdnn_criteo_$split.tsv; fi
  "$PYTHON" "$BASELINES/criteo_prep.py" --train "$DATA/wide-resdnn_criteo_train.tsv" --test "$eval_file" \
    --out "$SCRATCH/torch/prep_$split" --min-count 2 > "$SCRATCH/torch/prep_$split.log" 2>&1
  tail -n 2 "$SCRATCH/torch/prep_$split.log"
done

echo "== tune on dev, then score on test"
"$PYTHON" "$here/quality.py" "$PHASE" --scratch "$SCRATCH" --ctrkit "$CTRKIT" --baselines "$BASELINES" \
  --tune-seeds "$TUNE_SEEDS" --final-seeds "$FINAL_SEEDS" --check-subprocess

if [ "${DIAGNOSE:-1}" = 1 ] && [ "$PHASE" = all ]; then
  echo "== diagnostics (select nothing): CTRKit with the reference's feature definitions, 5-fold CV on train, test curves"
  "$PYTHON" "$here/diagnose.py" --scratch "$SCRATCH" --ctrkit "$CTRKIT" --baselines "$BASELINES" --data "$DATA" \
    --features "$FEATURES"
fi
