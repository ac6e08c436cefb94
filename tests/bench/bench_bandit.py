# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""make bench-bandit: the simulation of issue 19 (docs/report.md,
"cef-report bandit").

Three arms with true conversion rates 2 %, 3 % and 5 %.  Visitors arrive
in batches of 5 000; each is assigned an arm by a draw over the weights
live at that moment and converts with its arm's true rate.  After every
batch the real `build/cef-report bandit` computes the next weights from
the per-period sufficient statistics of all batches so far (each period
with the weights that were live in it, so its period weighting and SRM
check run as in production), and its weights record sets the next
batch's weights.

Printed for each method (top-two, GrowthBook's default, and plain
Thompson), as the median over the seeds (min-max in brackets):
- the best arm's share of new visitors after 50 000 and after 200 000
  visitors (the weight live from then on);
- the cumulative regret (expected conversions lost against always
  showing the best arm) as a share of a fixed uniform split's regret.

Targets (issue 19): share >= 70 % after 50 000; regret <= 40 % of the
uniform split's.  Printed next to the figures, never asserted.
"""

import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

RATES = {"a": 0.02, "b": 0.03, "c": 0.05}
BEST = "c"


def simulate(tool, method, seed, batch, visitors, checkpoints, workdir):
    rng = random.Random(seed)
    names = list(RATES)
    weights = {a: 1 / len(names) for a in names}     # uniform until published
    version = None
    periods = []
    regret = 0.0
    best_rate = RATES[BEST]
    out = {}
    calls = []
    seen = 0

    while seen < visitors:
        n = dict.fromkeys(names, 0)
        conv = dict.fromkeys(names, 0)
        cum = []
        acc = 0.0
        for a in names:
            acc += weights[a]
            cum.append(acc)
        for _ in range(batch):
            u = rng.random() * acc
            arm = names[-1]
            for a, c in zip(names, cum):
                if u < c:
                    arm = a
                    break
            n[arm] += 1
            if rng.random() < RATES[arm]:
                conv[arm] += 1
        seen += batch
        regret += sum(n[a] * (best_rate - RATES[a]) for a in names)

        period = {"arms": [{"name": a, "weight": weights[a], "n": n[a],
                            "sum": conv[a]} for a in names]}
        if version is not None:
            period["version"] = version
        periods.append(period)

        stats = workdir / f"stats-{method}-{seed}.json"
        stats.write_text(json.dumps({"metric": "binomial",
                                     "experiment": "sim",
                                     "periods": periods}))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(tool), "bandit", "--experiment", "sim", "--stats",
             str(stats), f"--{method}", "--seed", str(seed * 1000 + seen //
                                                       batch),
             "--now", str(1800000000 + seen)],
            capture_output=True, text=True)
        calls.append((time.perf_counter() - t0,
                      "SAMPLE RATIO MISMATCH" in proc.stderr))
        if proc.returncode != 0:
            sys.exit(f"cef-report bandit failed ({proc.returncode}): "
                     f"{proc.stderr}")
        rec = json.loads(proc.stdout)
        if version is not None and rec["version"] <= version:
            sys.exit(f"version went backwards: {version} -> "
                     f"{rec['version']}")
        version = rec["version"]
        weights = {a: rec["weights"][a] / 10000 for a in names}

        if seen in checkpoints:
            uniform = seen * (best_rate - sum(RATES.values()) / len(names))
            out[seen] = {"share": weights[BEST], "regret": regret / uniform}

    return out, calls


def fmt(values, pct=True):
    med = statistics.median(values)
    if pct:
        return (f"{100 * med:5.1f} % [{100 * min(values):.1f}-"
                f"{100 * max(values):.1f}]")
    return f"{med:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", default="build/cef-report")
    ap.add_argument("--seeds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--visitors", type=int, default=200000)
    ap.add_argument("--methods", default="top-two,thompson")
    args = ap.parse_args()

    tool = pathlib.Path(args.report).resolve()
    if not os.access(tool, os.X_OK):
        sys.exit(f"{tool}: not built (make build/cef-report)")

    checkpoints = sorted({50000, args.visitors})
    print(f"bench-bandit: true rates "
          f"{', '.join(f'{a} {100 * r:g} %' for a, r in RATES.items())}; "
          f"weights every {args.batch} visitors by {tool.name} bandit; "
          f"{args.seeds} seeds, median [min-max]")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        for method in args.methods.split(","):
            results = []
            calls = []
            for seed in range(1, args.seeds + 1):
                out, c = simulate(tool, method, seed, args.batch,
                                  args.visitors, checkpoints, workdir)
                results.append(out)
                calls += c
            print(f"\n{method}:")
            for cp in checkpoints:
                shares = [r[cp]["share"] for r in results]
                regrets = [r[cp]["regret"] for r in results]
                print(f"  after {cp:>7} visitors: best arm's share of new "
                      f"visitors {fmt(shares)} (target >= 70 % at 50000); "
                      f"regret vs uniform {fmt(regrets)} (target <= 40 %)")
            print(f"  cef-report bandit: {len(calls)} runs, median "
                  f"{1000 * statistics.median(c[0] for c in calls):.1f} ms "
                  f"each (10 000 draws, up to "
                  f"{args.visitors // args.batch} periods); SRM alarms "
                  f"{sum(c[1] for c in calls)} (the split follows the "
                  f"weights: about 1 in 1000 by chance)")


if __name__ == "__main__":
    main()
