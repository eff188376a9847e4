#!/usr/bin/env bash
# Training throughput and quality, CTRKit side by side with the PyTorch reference
# (../shared/baselines/torch_ctr.py) on the same 2,000,000 synthetic Criteo-like rows:
# in-memory steady state, and CTRKit end to end from TFRecord shards. See bench_train.py.
#
# Environment (defaults in brackets):
#   RUNS         interleaved runs of every measurement; medians are reported [3]
#   ROWS         training rows [2000000]          TEST_ROWS  test rows [200000]
#   MODELS       lr, fm or lr,fm [lr,fm]
#   SCRATCH      scratch directory, outside the repository [/tmp/ctrkit-bench-train]
#   TORCH_PYTHON a Python with torch (CPU), numpy, pandas, scikit-learn [/root/venvs/torch/bin/python]
#   SHARED       the shared folder with tools/ and baselines/ [../shared beside the repository]
#   CTRKIT       the ctrkit binary [.build/release/ctrkit, built if missing]
# Run it on a quiet machine (nothing else running: no build, no other job).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
ROWS=${ROWS:-2000000}
TEST_ROWS=${TEST_ROWS:-200000}
MODELS=${MODELS:-lr,fm}
SCRATCH=${SCRATCH:-/tmp/ctrkit-bench-train}
TORCH_PYTHON=${TORCH_PYTHON:-/root/venvs/torch/bin/python}
SHARED=$(realpath -m -- "${SHARED:-../shared}")
CTRKIT=${CTRKIT:-.build/release/ctrkit}
. Benchmarks/lib.sh
bench_scratch
bench_need_time
[ -f "$SHARED/baselines/torch_ctr.py" ] || bench_fail "no $SHARED/baselines/torch_ctr.py (set SHARED)"
"$TORCH_PYTHON" -c "import torch, pandas, sklearn" 2>/dev/null || bench_fail "$TORCH_PYTHON lacks torch, pandas or scikit-learn"
bench_ctrkit
echo "== load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (run on a quiet machine)"
exec python3 Benchmarks/train/bench_train.py --scratch "$SCRATCH" --ctrkit "$CTRKIT" \
  --torch-python "$TORCH_PYTHON" --shared "$SHARED" --runs "$RUNS" --rows "$ROWS" --test-rows "$TEST_ROWS" --models "$MODELS"
