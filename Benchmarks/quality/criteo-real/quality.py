#!/usr/bin/env python3
"""CTRKit vs the PyTorch reference on the real Criteo sample: tuning on dev, scoring on test.

Called by run.sh (which converts the data, fits the features and preps the PyTorch arrays first);
see README.md for the protocol. Standard library only, except that the PyTorch runs import
`torch_ctr.py` from the baselines folder, so run this with the PyTorch virtualenv's python.

Phases (each appends JSON lines to SCRATCH/results/*.jsonl and skips runs already recorded there,
so an interrupted run.sh continues where it stopped):

  tune    every grid point of GRID below, each with the tuning seeds, trained on train for
          MAX_EPOCHS epochs, scored on dev after every epoch.
  select  per (framework, model): the grid point and epoch count with the best mean dev AUC over
          the tuning seeds -> results/selected.json.
  final   the selected settings (and the untuned defaults, for context) with the final seeds,
          trained on train for the selected number of epochs, scored on test, dev and dev+test.
  report  results/report.md: per-seed and mean ± sd tables.

The PyTorch reference (`torch_ctr.py`, unmodified) is run in this process through its own main()
(argv set per run, its stdout JSON captured): the same code and the same seeding as running it as
a script, without re-importing torch for every run. `--check-subprocess` verifies that on one run.
"""
import argparse
import contextlib
import io
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time

MAX_EPOCHS = 20

# ---------------------------------------------------------------------------------------------
# Grids. Both frameworks get grids of about the same size (96-126 points) over the knobs that
# matter on 7,200 rows: step size, regularisation and batch size (1024 = 8 steps per epoch,
# 128 = 57, 32 = 225). The epoch count (1..MAX_EPOCHS) is chosen on dev too.
# Round 1 used the values marked "round 1"; its optima lay on grid edges (PyTorch: emb-l2 0.1 and
# batch 128 for LR and FM, FM step sizes at the low end; CTRKit: l1 1 and batch 128 for LR,
# factor step size 0.01 for FM), so every such axis was extended one or two steps outward, for
# both frameworks alike (round 2 = the grids below). README.md gives both rounds' choices.
# ---------------------------------------------------------------------------------------------

BATCHES = [32, 128, 1024]  # round 1: 128, 1024


def grid_torch(model):
    if model == "lr":
        optims = [("adagrad", 0.01), ("adagrad", 0.03), ("adagrad", 0.1), ("adagrad", 0.3),
                  ("adam", 0.001), ("adam", 0.01), ("adam", 0.03)]
    else:  # round 1 without adagrad 0.003
        optims = [("adagrad", 0.003), ("adagrad", 0.01), ("adagrad", 0.03), ("adagrad", 0.1),
                  ("adam", 0.001), ("adam", 0.003), ("adam", 0.01)]
    # round 1: emb-l2 up to 0.1
    for (optim, lr), l2, batch in itertools.product(optims, [0.0, 1e-3, 1e-2, 1e-1, 0.3, 1.0], BATCHES):
        yield {"optim": optim, "lr": lr, "emb_l2": l2, "batch": batch}


def grid_ctrkit(model, lr_choice=None):
    if model == "lr":  # round 1: l1 0 and 1
        for alpha, l1, l2, batch in itertools.product([0.02, 0.05, 0.1, 0.2], [0.0, 1.0, 3.0], [0.0, 1.0, 10.0], BATCHES):
            yield {"alpha": alpha, "l1": l1, "l2": l2, "batch": batch}
        return
    # FM: the linear part is either the Examples/criteo default FTRL setting or the one selected
    # for LR (two-stage), crossed with the factor rows' AdaGrad step size and L2, and the batch size.
    linears = [{"alpha": 0.05, "l1": 0.5, "l2": 1.0}]
    if lr_choice and {k: lr_choice[k] for k in ("alpha", "l1", "l2")} not in linears:
        linears.append({k: lr_choice[k] for k in ("alpha", "l1", "l2")})
    # round 1: factor step sizes from 0.01
    for lin, flr, fl2, batch in itertools.product(linears, [0.003, 0.01, 0.03, 0.1], [0.0, 0.01, 0.1, 1.0], BATCHES):
        yield {**lin, "factor_lr": flr, "factor_l2": fl2, "batch": batch}


# Untuned settings, for context only (not used for the requirement).
DEFAULTS = {
    # Examples/criteo/{lr-ftrl,fm}.yaml as they were at commit 78f711b (epochs 1, batch 1024, FTRL
    # l1 0.5; commit 80021ca later changed l1 to 1.0).
    ("ctrkit", "lr"): ({"alpha": 0.05, "l1": 0.5, "l2": 1.0, "batch": 1024, "examples": True}, 1),
    ("ctrkit", "fm"): ({"alpha": 0.05, "l1": 0.5, "l2": 1.0, "factor_lr": 0.02, "factor_l2": 0.001, "batch": 1024,
                        "examples": True}, 1),
    # torch_ctr.py defaults (Adam 1e-3, batch 1024, no L2), 3 epochs as in baselines/RESULTS.md.
    ("pytorch", "lr"): ({"optim": "adam", "lr": 0.001, "emb_l2": 0.0, "batch": 1024}, 3),
    ("pytorch", "fm"): ({"optim": "adam", "lr": 0.001, "emb_l2": 0.0, "batch": 1024}, 3),
}


def key_of(params):
    return json.dumps(params, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# CTRKit
# ---------------------------------------------------------------------------------------------

def experiment_yaml(model, p, seed, epochs, features="../fitted.yaml"):
    lines = ["# generated by Benchmarks/quality/criteo-real/quality.py",
             f"features: {features}",
             f"model: {{type: {model}" + (", factors: 16, init_std: 0.01}" if model == "fm" else "}"),
             "optimizers:",
             f"  linear: {{type: ftrl, alpha: {p['alpha']}, beta: 1.0, l1: {p['l1']}, l2: {p['l2']}}}"]
    if model == "fm":
        lines.append(f"  factors: {{type: adagrad, learning_rate: {p['factor_lr']}, initial_accumulator_value: 0.1, "
                     f"l2: {p['factor_l2']}}}")
    lines += ["  dense: {type: adam, learning_rate: 0.001}",
              "training:",
              f"  batch_size: {p['batch']}",
              f"  epochs: {epochs}",
              "  shuffle_buffer: 65536",
              f"  seed: {seed}",
              "  log_every: 100000"]
    return "\n".join(lines) + "\n"


class CTRKit:
    def __init__(self, args):
        self.bin = args.ctrkit
        self.s = args.scratch
        self.data = {s: os.path.join(self.s, "data", s, "*.tfrecord.gz") for s in ("train", "dev", "test")}
        self.n = 0

    def _run(self, cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
        return json.loads(r.stdout)

    def train(self, model, p, seed, epochs, tag):
        """Trains on train, scoring dev after every epoch; returns (model_dir, per-epoch dev metrics)."""
        self.n += 1
        cfg_dir = os.path.join(self.s, "ctrkit", "configs")
        os.makedirs(cfg_dir, exist_ok=True)
        cfg = os.path.join(cfg_dir, f"{tag}.yaml")
        with open(cfg, "w") as f:
            f.write(experiment_yaml(model, p, seed, epochs))
        out = os.path.join(self.s, "ctrkit", "models", tag)
        if os.path.isdir(out):
            subprocess.run(["rm", "-rf", "--", out], check=True)
        res = self._run([self.bin, "train", "--config", cfg, "--train", self.data["train"], "--eval", self.data["dev"],
                         "--output", out, "--epochs", str(epochs), "--threads", "1", "--json"])
        curve = [{"epoch": e["epoch"], "auc": e["auc"], "logloss": e["logloss"]} for e in res["evaluations"]]
        assert [c["epoch"] for c in curve] == list(range(1, epochs + 1)), curve
        return out, curve, res

    def evaluate(self, model_dir, splits):
        # --checkpoint latest: the parameters after the last epoch (the dev-best checkpoint is not used,
        # the epoch count was already chosen on dev).
        patterns = [self.data[s] for s in splits]
        r = self._run([self.bin, "eval", "--model", model_dir, "--checkpoint", "latest", "--data", *patterns, "--json"])
        return {"auc": r["auc"], "logloss": r["logloss"], "count": r["count"]}


# ---------------------------------------------------------------------------------------------
# PyTorch reference
# ---------------------------------------------------------------------------------------------

class Torch:
    def __init__(self, args):
        sys.path.insert(0, args.baselines)
        import torch_ctr  # noqa: the reference script, unmodified
        self.mod = torch_ctr
        self.script = os.path.join(args.baselines, "torch_ctr.py")
        self.python = sys.executable
        self.prep = {s: os.path.join(args.scratch, "torch", f"prep_{s}") for s in ("dev", "test", "devtest")}

    def argv(self, model, p, seed, epochs, split):
        return ["--data", self.prep[split], "--model", model, "--numeric", "bucket", "--optim", p["optim"],
                "--lr", str(p["lr"]), "--emb-l2", str(p["emb_l2"]), "--batch", str(p["batch"]),
                "--epochs", str(epochs), "--seed", str(seed), "--threads", "1"]

    def run(self, model, p, seed, epochs, split):
        """Trains on train; returns the per-epoch metrics on `split` (the prep dir's 'test' part)."""
        argv = self.argv(model, p, seed, epochs, split)
        out, err = io.StringIO(), io.StringIO()
        old = sys.argv
        sys.argv = ["torch_ctr.py"] + argv
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.mod.main()
        finally:
            sys.argv = old
        res = json.loads(out.getvalue().strip().splitlines()[-1])
        return [{"epoch": e["epoch"], "auc": e["test_auc"], "logloss": e["test_logloss"]} for e in res["epochs"]], res

    def run_subprocess(self, model, p, seed, epochs, split):
        r = subprocess.run([self.python, self.script] + self.argv(model, p, seed, epochs, split),
                           capture_output=True, text=True, check=True)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        return [{"epoch": e["epoch"], "auc": e["test_auc"], "logloss": e["test_logloss"]} for e in res["epochs"]]


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------

def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def append_jsonl(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def tag_of(fw, model, p, seed, phase):
    short = "_".join(f"{k}{v}" for k, v in sorted(p.items()) if k != "examples")
    return f"{phase}_{model}_{short}_s{seed}".replace(".", "p")


def tune(args, frameworks, models):
    path = os.path.join(args.results, "tune.jsonl")
    done = {(r["framework"], r["model"], key_of(r["params"]), r["seed"]) for r in load_jsonl(path)}
    ck = CTRKit(args) if "ctrkit" in frameworks else None
    th = Torch(args) if "pytorch" in frameworks else None
    for fw in frameworks:
        for model in models:
            if fw == "ctrkit":
                lr_choice = None
                if model == "fm":
                    sel = select(args, write=False).get("ctrkit/lr")
                    if sel is None:
                        raise SystemExit("tune ctrkit lr before ctrkit fm (its linear part reuses LR's choice)")
                    lr_choice = sel["params"]
                grid = list(grid_ctrkit(model, lr_choice))
            else:
                grid = list(grid_torch(model))
            t0 = time.time()
            todo = [(p, s) for p in grid for s in args.tune_seeds if (fw, model, key_of(p), s) not in done]
            print(f"tune {fw} {model}: {len(grid)} grid points x {len(args.tune_seeds)} seeds, {len(todo)} runs to do",
                  file=sys.stderr, flush=True)
            for i, (p, s) in enumerate(todo):
                if fw == "ctrkit":
                    out, curve, _ = ck.train(model, p, s, MAX_EPOCHS, "tune")
                    subprocess.run(["rm", "-rf", "--", out], check=True)
                else:
                    curve, _ = th.run(model, p, s, MAX_EPOCHS, "dev")
                append_jsonl(path, {"framework": fw, "model": model, "params": p, "seed": s, "dev": curve})
                if (i + 1) % 20 == 0:
                    print(f"  {i + 1}/{len(todo)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)


def select(args, write=True):
    """Best (params, epochs) per framework/model by mean dev AUC over the tuning seeds, among the
    points of the current grids (CTRKit FM's grid depends on CTRKit LR's choice, made first)."""
    runs = load_jsonl(os.path.join(args.results, "tune.jsonl"))
    groups = {}
    for r in runs:
        if r["seed"] in args.tune_seeds:
            groups.setdefault((r["framework"], r["model"], key_of(r["params"])), []).append(r)
    best = {}
    for fw, model in (("ctrkit", "lr"), ("ctrkit", "fm"), ("pytorch", "lr"), ("pytorch", "fm")):
        name = f"{fw}/{model}"
        if fw == "pytorch":
            grid = list(grid_torch(model))
        elif model == "lr":
            grid = list(grid_ctrkit("lr"))
        elif "ctrkit/lr" in best:
            grid = list(grid_ctrkit("fm", best["ctrkit/lr"]["params"]))
        else:
            continue
        complete = 0
        for p in grid:
            rs = groups.get((fw, model, key_of(p)), [])
            if len(rs) != len(args.tune_seeds):
                continue
            complete += 1
            for e in range(1, MAX_EPOCHS + 1):
                m = statistics.mean(r["dev"][e - 1]["auc"] for r in rs)
                if name not in best or m > best[name]["dev_auc_mean"]:
                    best[name] = {"framework": fw, "model": model, "params": p, "epochs": e, "dev_auc_mean": m,
                                  "dev_logloss_mean": statistics.mean(r["dev"][e - 1]["logloss"] for r in rs),
                                  "tune_seeds": args.tune_seeds}
        if name in best:
            best[name]["grid_points"] = complete
            best[name]["grid_points_total"] = len(grid)
    if write:
        with open(os.path.join(args.results, "selected.json"), "w") as f:
            json.dump(best, f, indent=1, sort_keys=True)
        for name, b in sorted(best.items()):
            print(f"selected {name}: {b['params']} epochs {b['epochs']}: mean dev AUC {b['dev_auc_mean']:.4f} "
                  f"logloss {b['dev_logloss_mean']:.4f} ({b['grid_points']} of {b['grid_points_total']} grid points)",
                  file=sys.stderr)
    return best


def final(args, frameworks, models):
    path = os.path.join(args.results, "final.jsonl")
    done = {(r["setting"], r["framework"], r["model"], key_of(r["params"]), r["epochs"], r["seed"]) for r in load_jsonl(path)}
    with open(os.path.join(args.results, "selected.json")) as f:
        sel = json.load(f)
    ck = CTRKit(args) if "ctrkit" in frameworks else None
    th = Torch(args) if "pytorch" in frameworks else None
    for fw in frameworks:
        for model in models:
            for setting in ("tuned", "default"):
                if setting == "tuned":
                    p, epochs = sel[f"{fw}/{model}"]["params"], sel[f"{fw}/{model}"]["epochs"]
                else:
                    p, epochs = DEFAULTS[(fw, model)]
                for s in args.final_seeds:
                    if (setting, fw, model, key_of(p), epochs, s) in done:
                        continue
                    rec = {"setting": setting, "framework": fw, "model": model, "params": p, "epochs": epochs, "seed": s}
                    if fw == "ctrkit":
                        out, curve, res = ck.train(model, p, s, epochs, f"final_{setting}_{model}_s{s}")
                        for split in ("test", "dev"):
                            rec[split] = ck.evaluate(out, [split])
                        rec["devtest"] = ck.evaluate(out, ["dev", "test"])
                        # the dev score after the last epoch from training must match a separate eval
                        assert abs(curve[-1]["auc"] - rec["dev"]["auc"]) < 1e-9, (curve[-1], rec["dev"])
                        rec["train_seconds"] = res["seconds"]
                    else:
                        for split in ("test", "dev", "devtest"):
                            curve, res = th.run(model, p, s, epochs, split)
                            rec[split] = {"auc": curve[-1]["auc"], "logloss": curve[-1]["logloss"], "count": res["n_test"]}
                    append_jsonl(path, rec)
                    print(f"final {setting} {fw} {model} seed {s}: test AUC {rec['test']['auc']:.4f} "
                          f"logloss {rec['test']['logloss']:.4f}", file=sys.stderr, flush=True)


def fmt_ms(xs, d=4):
    if not xs:
        return "—"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{d}f} ± {sd:.{d}f}"


def describe(fw, p, epochs):
    if fw == "pytorch":
        s = f"{p['optim']} lr {p['lr']}, emb-l2 {p['emb_l2']}, batch {p['batch']}"
    else:
        s = f"FTRL α {p['alpha']} β 1 l1 {p['l1']} l2 {p['l2']}"
        if "factor_lr" in p:
            s += f"; factors AdaGrad lr {p['factor_lr']} l2 {p['factor_l2']}"
        s += f", batch {p['batch']}"
        if p.get("examples"):
            s = "Examples/criteo config of 78f711b (" + s + ")"
    return s + f", {epochs} epoch" + ("s" if epochs != 1 else "")


def report(args):
    runs = load_jsonl(os.path.join(args.results, "final.jsonl"))
    with open(os.path.join(args.results, "selected.json")) as f:
        sel = json.load(f)
    L = []
    L.append("## Selected settings (best mean dev AUC over tuning seeds " + ", ".join(map(str, args.tune_seeds)) + ")\n")
    L.append("| framework | model | grid points | selected setting | mean dev AUC at selection |")
    L.append("|---|---|---|---|---|")
    for name in ("ctrkit/lr", "pytorch/lr", "ctrkit/fm", "pytorch/fm"):
        if name in sel:
            b = sel[name]
            L.append(f"| {b['framework']} | {b['model'].upper()} | {b['grid_points']} | {describe(b['framework'], b['params'], b['epochs'])} "
                     f"| {b['dev_auc_mean']:.4f} |")
    def current(r):  # runs of the current selection / defaults and seeds only
        if r["seed"] not in args.final_seeds:
            return False
        if r["setting"] == "tuned":
            b = sel.get(f"{r['framework']}/{r['model']}")
            return b is not None and key_of(b["params"]) == key_of(r["params"]) and b["epochs"] == r["epochs"]
        p, e = DEFAULTS[(r["framework"], r["model"])]
        return key_of(p) == key_of(r["params"]) and e == r["epochs"]

    runs = [r for r in runs if current(r)]
    for setting in ("tuned", "default"):
        rs = [r for r in runs if r["setting"] == setting]
        if not rs:
            continue
        seeds = sorted({r["seed"] for r in rs})
        combos = [(fw, m) for m in ("lr", "fm") for fw in ("ctrkit", "pytorch") if any(r["framework"] == fw and r["model"] == m for r in rs)]
        L.append(f"\n## {'Tuned on dev' if setting == 'tuned' else 'Untuned defaults (context only)'}: "
                 f"trained on train (7,200 rows), seeds {seeds[0]}–{seeds[-1]}\n")
        L.append("Mean ± sample sd over seeds. test = 391 rows (the requirement), dev = 409 rows (used for selection, so optimistic "
                 "for the tuned rows), dev+test = 800 rows.\n")
        L.append("| model | framework | setting | test AUC | test logloss | dev AUC | dev logloss | dev+test AUC | dev+test logloss |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for fw, m in combos:
            xs = sorted([r for r in rs if r["framework"] == fw and r["model"] == m], key=lambda r: r["seed"])
            col = lambda split, k: [r[split][k] for r in xs]
            L.append(f"| {m.upper()} | {fw} | {describe(fw, xs[0]['params'], xs[0]['epochs'])} | **{fmt_ms(col('test', 'auc'))}** "
                     f"| {fmt_ms(col('test', 'logloss'))} | {fmt_ms(col('dev', 'auc'))} | {fmt_ms(col('dev', 'logloss'))} "
                     f"| {fmt_ms(col('devtest', 'auc'))} | {fmt_ms(col('devtest', 'logloss'))} |")
        L.append("\nPer seed, test AUC / test logloss:\n")
        L.append("| seed | " + " | ".join(f"{m.upper()} {fw}" for fw, m in combos) + " |")
        L.append("|---|" + "---|" * len(combos))
        for s in seeds:
            cells = []
            for fw, m in combos:
                r = [r for r in rs if r["framework"] == fw and r["model"] == m and r["seed"] == s]
                cells.append(f"{r[0]['test']['auc']:.4f} / {r[0]['test']['logloss']:.4f}" if r else "—")
            L.append(f"| {s} | " + " | ".join(cells) + " |")
        # the requirement, per model
        L.append("")
        for m in ("lr", "fm"):
            a = [r["test"]["auc"] for r in rs if r["framework"] == "ctrkit" and r["model"] == m]
            b = [r["test"]["auc"] for r in rs if r["framework"] == "pytorch" and r["model"] == m]
            if a and b:
                d = statistics.mean(a) - statistics.mean(b)
                se = math.sqrt((statistics.variance(a) if len(a) > 1 else 0) / len(a) + (statistics.variance(b) if len(b) > 1 else 0) / len(b))
                L.append(f"* {m.upper()}: CTRKit − PyTorch mean test AUC = {d:+.4f} (seed-to-seed standard error of the difference "
                         f"{se:.4f}); CTRKit ≥ PyTorch: **{'yes' if d >= 0 else 'no'}**.")
    write_report(args.results, L)


def write_report(directory, lines):
    """Writes the report's lines to DIRECTORY/report.md and prints them."""
    text = "\n".join(lines) + "\n"
    with open(os.path.join(directory, "report.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["tune", "select", "final", "report", "all"])
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--ctrkit", required=True)
    ap.add_argument("--baselines", required=True)
    ap.add_argument("--frameworks", default="ctrkit,pytorch")
    ap.add_argument("--models", default="lr,fm")
    ap.add_argument("--tune-seeds", default="101,102,103")
    ap.add_argument("--final-seeds", default="1,2,3,4,5,6,7,8,9,10")
    ap.add_argument("--check-subprocess", action="store_true",
                    help="check that an in-process PyTorch run equals running torch_ctr.py as a script")
    args = ap.parse_args()
    args.tune_seeds = [int(x) for x in args.tune_seeds.split(",")]
    args.final_seeds = [int(x) for x in args.final_seeds.split(",")]
    args.results = os.path.join(args.scratch, "results")
    os.makedirs(args.results, exist_ok=True)
    frameworks = args.frameworks.split(",")
    models = args.models.split(",")
    if args.check_subprocess:
        th = Torch(args)
        p = {"optim": "adagrad", "lr": 0.03, "emb_l2": 0.01, "batch": 128}
        a, _ = th.run("fm", p, 7, 3, "dev")
        b = th.run_subprocess("fm", p, 7, 3, "dev")
        assert a == b, (a, b)
        print("in-process torch_ctr.main() == subprocess torch_ctr.py:", a, file=sys.stderr)
    if args.phase in ("tune", "all"):
        for model in models:  # ctrkit FM's grid needs ctrkit LR's choice
            tune(args, frameworks, [model])
            select(args, write=True)
    if args.phase in ("select", "all"):
        select(args, write=True)
    if args.phase in ("final", "all"):
        final(args, frameworks, models)
    if args.phase in ("report", "all"):
        report(args)


if __name__ == "__main__":
    main()
