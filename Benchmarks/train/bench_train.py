#!/usr/bin/env python3
"""Training throughput and quality, CTRKit side by side with the PyTorch reference.

The task is the synthetic Criteo-like click log of ../shared/tools/synth_clicklog.py (teacher
seed 1; train = 2,000,000 rows of seed 2, test = 200,000 rows of seed 1), the one
../shared/baselines/RESULTS.md reports on. Both frameworks see the same rows and the same kind
of features: 26 categorical fields with a min-count-2 vocabulary and the 13 counts bucketized.

Per run (interleaved, so both see the same machine state):
  * PyTorch (../shared/baselines/torch_ctr.py, 2 threads, batches gathered from in-memory
    tensors): LR with sparse AdaGrad 0.05 and FM k=16 with sparse AdaGrad 0.01 + embedding L2
    1e-2, bucketized numerics, 3 epochs; steady = median of epochs 2..3 (its own report). It
    runs before and again after the run's CTRKit measures, and the run's reference is the mean
    of the two, so a drift of the machine's speed during the run moves both sides alike.
  * CTRKit, Examples/criteo/lr-ftrl.yaml and fm.yaml (2 compute threads):
      - in memory: `train --in-memory --epochs 3`; steady = median of epochs 2..3, trained from
        the examples kept in memory (as PyTorch is measured);
      - end to end from raw GZIP shards (`convert --format criteo`): 1 epoch read, parsed,
        transformed (vocabulary lookups, bucketizing) and trained;
      - the same from raw uncompressed shards, which shows what inflating the GZIP shards costs;
      - end to end from transformed shards (`convert --transform`, uncompressed): 1 epoch read,
        parsed and trained on the materialised ids, like PyTorch's prepared tensors;
      - the same from transformed shards with packed ids (`convert --transform --pack-ids`): each
        record holds its ids in one packed list instead of one feature per column.
Test AUC after one epoch comes from the same runs. Peak RSS is /usr/bin/time's maximum
resident set of each process. Prints a table and, last, one JSON line.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(cmd, cwd=None):
    """Runs cmd under /usr/bin/time; returns (stdout, peak RSS MiB, wall s)."""
    rss_file = os.path.join(ARGS.scratch, "time.out")
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.time() - t0
    if p.returncode != 0:
        log(p.stderr[-4000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    with open(rss_file) as f:
        rss = int(f.read().strip().splitlines()[-1]) / 1024
    return p.stdout, rss, wall


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("no JSON line in output:\n" + text[-2000:])


def prepare():
    s = ARGS.scratch
    os.makedirs(s, exist_ok=True)
    train_tsv, test_tsv = os.path.join(s, "train.tsv"), os.path.join(s, "test.tsv")
    gen = os.path.join(ARGS.shared, "tools", "synth_clicklog.py")
    if not os.path.exists(train_tsv):
        log(f"== generating {ARGS.rows} training rows (synth_clicklog.py teacher 1, seed 2)")
        subprocess.run([sys.executable, gen, "--rows", str(ARGS.rows), "--seed", "2", "--teacher-seed", "1",
                        "--out", train_tsv], check=True)
    if not os.path.exists(test_tsv):
        log(f"== generating {ARGS.test_rows} test rows (teacher 1, seed 1)")
        subprocess.run([sys.executable, gen, "--rows", str(ARGS.test_rows), "--seed", "1", "--teacher-seed", "1",
                        "--out", test_tsv], check=True)
    prep = os.path.join(s, "torch_prep")
    if not os.path.exists(os.path.join(prep, "meta.json")):
        log("== PyTorch preprocessing (criteo_prep.py, min count 2)")
        subprocess.run([ARGS.torch_python, os.path.join(ARGS.shared, "baselines", "criteo_prep.py"), "--train", train_tsv,
                        "--test", test_tsv, "--out", prep, "--min-count", "2"], check=True)
    ck = ARGS.ctrkit
    for tsv, out, shards, compression in [(train_tsv, "raw", 8, "gzip"), (test_tsv, "raw-test", 1, "gzip"),
                                          (train_tsv, "raw-none", 8, "none"), (test_tsv, "raw-none-test", 1, "none")]:
        if not os.path.exists(os.path.join(s, out, "MANIFEST.json")):
            log(f"== ctrkit convert {os.path.basename(tsv)} -> {out} ({compression})")
            subprocess.run([ck, "convert", "--input", tsv, "--format", "criteo", "--output", os.path.join(s, out),
                            "--shards", str(shards), "--compression", compression, "--overwrite"],
                           check=True, stdout=subprocess.DEVNULL)
    fitted = os.path.join(s, "fitted.yaml")
    if not os.path.exists(fitted):
        log("== ctrkit analyze (Examples/criteo/features.yaml)")
        subprocess.run([ck, "analyze", "--config", os.path.join(REPO, "Examples", "criteo", "features.yaml"),
                        "--data", os.path.join(s, "raw", "part-*"), "--output", fitted], check=True, stdout=subprocess.DEVNULL)
    for tsv, out, shards, pack in [(train_tsv, "t", 8, []), (test_tsv, "t-test", 1, []),
                                   (train_tsv, "tp", 8, ["--pack-ids"]), (test_tsv, "tp-test", 1, ["--pack-ids"])]:
        if not os.path.exists(os.path.join(s, out, "MANIFEST.json")):
            log(f"== ctrkit convert --transform {' '.join(pack)} {os.path.basename(tsv)} -> {out} (uncompressed)")
            subprocess.run([ck, "convert", "--input", tsv, "--format", "criteo", "--output", os.path.join(s, out),
                            "--shards", str(shards), "--compression", "none", "--transform", fitted, "--overwrite"] + pack,
                           check=True, stdout=subprocess.DEVNULL)
    # The shipped experiment configs, reading the fitted config (raw shards) or the transformed
    # shards' own config.
    for model in ["lr-ftrl", "fm"]:
        with open(os.path.join(REPO, "Examples", "criteo", model + ".yaml")) as f:
            text = f.read()
        with open(os.path.join(s, model + ".yaml"), "w") as f:
            f.write(text)
        for shards in ["t", "tp"]:
            with open(os.path.join(s, f"{model}-{shards}.yaml"), "w") as f:
                f.write(text.replace("features: fitted.yaml", f"features: {shards}/features.yaml"))
    return prep


def ctrkit_train(config, train, test, epochs, in_memory):
    s = ARGS.scratch
    out = os.path.join(s, "model")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [ARGS.ctrkit, "train", "--config", os.path.join(s, config), "--train", os.path.join(s, train, "part-*"),
           "--eval", os.path.join(s, test, "part-*"), "--output", out, "--epochs", str(epochs), "--threads", "2", "--json"]
    if in_memory:
        cmd.append("--in-memory")
    stdout, rss, _ = timed(cmd)
    r = last_json(stdout)
    eps = [e["examples_per_second"] for e in r["epochs"]]
    auc1 = next((e["auc"] for e in r["evaluations"] if e["epoch"] == 1), None)
    return {"epochs_ex_per_s": eps, "auc_1ep": auc1, "peak_rss_mib": round(rss),
            "cpu_seconds": [e["cpu_seconds"] for e in r["epochs"]]}


def torch_train(prep, model, seed):
    extra = ["--optim", "adagrad", "--lr", "0.05"] if model == "lr" else ["--optim", "adagrad", "--lr", "0.01", "--emb-l2", "1e-2"]
    cmd = [ARGS.torch_python, os.path.join(ARGS.shared, "baselines", "torch_ctr.py"), "--data", prep, "--model", model,
           "--numeric", "bucket", "--epochs", "3", "--threads", "2", "--seed", str(seed)] + extra
    stdout, rss, _ = timed(cmd)
    r = last_json(stdout)
    return {"epochs_ex_per_s": [e["ex_per_s"] for e in r["epochs"]], "steady": r["steady_ex_per_s"],
            "auc_1ep": r["auc_1ep"], "peak_rss_mib": round(rss), "foreign_cpu": r["max_foreign_cpu_frac"]}


# The end-to-end measures: result key, experiment config suffix, shard folder, name.
END_TO_END = [
    ("raw", "", "raw", "CTRKit, end to end, raw GZIP shards"),
    ("raw_none", "", "raw-none", "CTRKit, end to end, raw uncompressed shards"),
    ("transformed", "-t", "t", "CTRKit, end to end, transformed shards"),
    ("packed", "-tp", "tp", "CTRKit, end to end, packed-id shards"),
]


def median(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Required to run; --from-log needs none of them.
    ap.add_argument("--scratch")
    ap.add_argument("--ctrkit")
    ap.add_argument("--torch-python")
    ap.add_argument("--shared")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--test-rows", type=int, default=200_000)
    ap.add_argument("--models", default="lr,fm")
    ap.add_argument("--from-log", metavar="LOG",
                    help="summarize a finished run from its log (the per-run JSON lines) instead of running")
    ARGS = ap.parse_args()
    if ARGS.from_log:
        results, load_end = results_from_log(ARGS.from_log, ARGS.models.split(","))
        summarize(results, ARGS.runs, ARGS.rows, load_end)
        return
    missing = [f"--{a.replace('_', '-')}" for a in ("scratch", "ctrkit", "torch_python", "shared") if not getattr(ARGS, a)]
    if missing:
        ap.error("the following arguments are required: " + ", ".join(missing))
    prep = prepare()
    results = {}
    for run in range(1, ARGS.runs + 1):
        for model in ARGS.models.split(","):
            cfg = "lr-ftrl" if model == "lr" else "fm"
            r = results.setdefault(model, {"torch": [], "torch_after": [], "memory": []} | {key: [] for key, *_ in END_TO_END})
            log(f"== run {run}: {model}: PyTorch")
            r["torch"].append(torch_train(prep, model, run))
            log(f"== run {run}: {model}: CTRKit in memory (3 epochs)")
            r["memory"].append(ctrkit_train(cfg + ".yaml", "raw", "raw-test", 3, True))
            for key, suffix, shards, name in END_TO_END:
                log(f"== run {run}: {model}: {name}")
                r[key].append(ctrkit_train(cfg + suffix + ".yaml", shards, shards + "-test", 1, False))
            log(f"== run {run}: {model}: PyTorch again")
            r["torch_after"].append(torch_train(prep, model, run))
            log(json.dumps({"model": model} | {k: v[-1] for k, v in r.items()}))
    summarize(results, ARGS.runs, ARGS.rows)


def results_from_log(path, models):
    """The per-run results of a finished run, from the JSON line it logs after each model of each
    run. Lines without a "model" key (the first run with PyTorch before and after, 9127b26)
    follow the order of `models`; logs older than that have no PyTorch run after and cannot be
    summarized this way. Also returns the load average the run logged at its end (None if the
    log stops before its summary)."""
    results, load_end = {}, None
    lines = []
    for line in open(path):
        if line.startswith("{"):
            if '"load_average_end"' in line:
                load_end = json.loads(line)["load_average_end"]
            else:
                lines.append(line)
    for i, line in enumerate(lines):
        d = json.loads(line)
        model = d.pop("model", models[i % len(models)])
        for k, v in d.items():
            results.setdefault(model, {}).setdefault(k, []).append(v)
    return results, load_end


def summarize(results, runs, rows, load_end=None):
    """Prints the table and the JSON summary; `load_end` is the run's own (from its log), else
    the load average now, at the end of a run just made."""
    summary = {"load_average_end": load_end if load_end is not None else os.getloadavg(), "runs": runs, "rows": rows,
               "models": {}}
    # The machine's speed drifts by tens of percent within minutes, so besides the ratio of the
    # medians, each CTRKit measure is divided by its run's PyTorch reference (the mean of the
    # PyTorch runs just before and just after it), and the median and minimum of those per-run
    # ratios are reported too. Another process can slow one PyTorch run of the pair (its
    # foreign_cpu shows it), which lowers the mean, so the per-run ratio to the faster of the
    # two is reported as well: the conservative figure.
    print(f"{'model':6} {'measure':44} {'ex/s (median)':>14} {'ratio':>7} {'per-run ratios (median / min)':>30} "
          f"{'to faster PyTorch (min)':>24} {'AUC 1 ep':>9} {'peak RSS MiB':>13}")
    for model, r in results.items():
        torch_runs = [(a["steady"] + b["steady"]) / 2 for a, b in zip(r["torch"], r["torch_after"])]
        torch_fast = [max(a["steady"], b["steady"]) for a, b in zip(r["torch"], r["torch_after"])]
        torch_steady = median(torch_runs)
        mem_steady = median([median(x["epochs_ex_per_s"][1:]) for x in r["memory"]])
        rows = [
            ("PyTorch, in memory (steady, epochs 2-3)", torch_steady, r["torch"] + r["torch_after"], torch_runs),
            ("CTRKit, in memory (steady, epochs 2-3)", mem_steady, r["memory"],
             [median(x["epochs_ex_per_s"][1:]) for x in r["memory"]]),
        ]
        for key, _, _, name in END_TO_END:
            if key not in r:  # a log from before the measure existed
                continue
            rates = [x["epochs_ex_per_s"][0] for x in r[key]]
            rows.append((name, median(rates), r[key], rates))
        m = {}
        for name, rate, runs, rates in rows:
            ratio = rate / torch_steady if torch_steady else None
            per_run = [a / b for a, b in zip(rates, torch_runs) if a and b]
            conservative = [a / b for a, b in zip(rates, torch_fast) if a and b]
            auc = median([x["auc_1ep"] for x in runs])
            rss = median([x["peak_rss_mib"] for x in runs])
            spread = f"{median(per_run):.2f} / {min(per_run):.2f}" if per_run else "-"
            low = ", ".join(f"{x:.2f}" for x in conservative) + f" ({min(conservative):.2f})" if conservative else "-"
            print(f"{model:6} {name:44} {rate:14,.0f} {ratio:7.2f} {spread:>30} {low:>24} {auc:9.5f} {rss:13,.0f}")
            m[name] = {"ex_per_s": rate, "ratio_to_pytorch": ratio, "per_run_ratios": per_run,
                       "per_run_ratios_to_faster_pytorch": conservative,
                       "auc_1ep": auc, "peak_rss_mib": rss, "per_run": runs}
        summary["models"][model] = m
        print(f"{model:6} PyTorch before / after each run (foreign CPU): "
              + ", ".join(f"{a['steady']:,.0f} ({a['foreign_cpu']:.2f}) / {b['steady']:,.0f} ({b['foreign_cpu']:.2f})"
                          for a, b in zip(r["torch"], r["torch_after"])))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
