"""Two runs of the study side by side: do their verdicts agree, and how far did the means move?

    python -m inbol_utils.replication data/default path/to/another/artifacts

A rerun elsewhere (another CPU, other float kernels) or on other seeds gives other digits, and
can give other verdicts where an interval lies near zero. This checks which, for any
two runs' artifacts folders (notebook 04 must have run in both):
1. verdicts: every seed-paired comparison in both runs (`results/comparisons.csv`: Trust,
   helpfulness, over-refusal, refusal of unanswerable queries; `results/aurc.csv`: the
   risk-coverage frontiers' AURC), whether the verdicts agree, and whether the second run's
   difference lies inside the first's interval (a run of fewer than `metrics.MIN_REPLICATES`
   seeds gives no verdict, `metrics.TOO_FEW`: the summary counts those comparisons);
2. shifts: each method's mean over seeds of the headline metrics in both runs, as chapter 4
   reported them (`results/main_table.csv`), and the shift in units of the first run's spread.
The second run may come from another machine, from this one with torch's generic float kernels
(`ATEN_CPU_CAPABILITY=default`: other sums, other models), or from other seeds.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .runner import environment
from .artifacts import require
from .evaluation import COMPARED
from .methods import METHODS
from .metrics import MIN_REPLICATES, TOO_FEW

SHIFT_METRICS = COMPARED  # the headline metrics, compared seed-paired in every run
KEYS = ["metric", "method", "rival", "split"]
VERDICT_FILES = ("comparisons.csv", "aurc.csv")  # notebook 04's seed-paired comparisons, one schema


def _results(artifacts: str | os.PathLike, name: str, **read) -> pd.DataFrame:
    return pd.read_csv(require(Path(artifacts) / "results" / name, "notebook 04 (evaluation)"), **read)


def _reported(artifacts: str | os.PathLike) -> pd.DataFrame:
    """Chapter 4's mean and spread over seeds (`evaluation.mean_spread`, as main_table.csv holds
    it, with only the metrics the source can measure): one row per method, split and metric."""
    table = _results(artifacts, "main_table.csv", header=[0, 1], index_col=[0, 1])
    return (table.stack(level=0, future_stack=True).rename_axis(["method", "split", "metric"])
                 .rename(columns={"std": "sd"})[["mean", "sd"]])


def verdicts(first: str | os.PathLike, second: str | os.PathLike) -> pd.DataFrame:
    """Every comparison of both runs, one row each: the paired difference, interval and verdict
    of each run (suffixes _1 and _2), `agree` (same verdict, `metrics.TOO_FEW` included) and
    `inside` (the second run's difference inside the first run's interval)."""
    one, two = (pd.concat([_results(run, name) for name in VERDICT_FILES])[[*KEYS, "diff", "low", "high", "verdict"]]
                for run in (first, second))
    both = one.merge(two, on=KEYS, how="outer", suffixes=("_1", "_2"), validate="one_to_one")
    both["agree"] = both["verdict_1"] == both["verdict_2"]
    both["inside"] = both["diff_2"].between(both["low_1"], both["high_1"])
    return both


def shifts(first: str | os.PathLike, second: str | os.PathLike,
           metrics: tuple[str, ...] = SHIFT_METRICS) -> pd.DataFrame:
    """Each method's reported mean and spread over seeds of `metrics`, per split, in both runs,
    and the shift of the mean in units of the first run's spread (inf where that spread is 0 and
    the mean moved, 0 where neither did). A metric the source cannot measure is not reported,
    so it is left out."""
    one, two = _reported(first), _reported(second)
    both = one.merge(two, left_index=True, right_index=True, how="inner", suffixes=("_1", "_2")).reset_index()
    both = both[both["metric"].isin(metrics)].reset_index(drop=True)
    both["method"] = pd.Categorical(both["method"], categories=METHODS)  # tables in registry order
    both["shift"] = both["mean_2"] - both["mean_1"]
    with np.errstate(divide="ignore", invalid="ignore"):
        both["shift_in_sd"] = np.where(both["shift"] == 0, 0.0, both["shift"].abs() / both["sd_1"])
    return both


def setup(artifacts: str | os.PathLike) -> str:
    """Where and how a run ran, in a line: CPU, float kernels and seeds."""
    stages = environment.read(artifacts)
    seeds = sorted(_results(artifacts, "per_seed.csv")["seed"].unique())
    machines = sorted({f"{s['cpu']} ({s['float_kernels']} kernels)" for s in stages.values()}) or ["unrecorded"]
    return f"{artifacts}: {', '.join(machines)}, seeds {', '.join(map(str, seeds))}"


def main(argv: list[str] | None = None) -> dict[str, pd.DataFrame]:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.replication", description=__doc__.split("\n")[0])
    parser.add_argument("first", help="the reference run's artifacts folder, e.g. data/default")
    parser.add_argument("second", help="the rerun's artifacts folder")
    args = parser.parse_args(argv)
    table, moved = verdicts(args.first, args.second), shifts(args.first, args.second)
    print(f"1: {setup(args.first)}\n2: {setup(args.second)}")
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.float_format", "{:.3f}".format):
        print("\nVerdicts (seed-paired 95% intervals; diff is method minus rival, and the verdict says which "
              "serves the user better):")
        print(table.to_string(index=False))
        print("\nMean over seeds, run 1 -> run 2 (the shift in units of run 1's spread over seeds):")
        cells = moved.assign(cell=[f"{a:.3f} -> {b:.3f} ({s:.1f})" for a, b, s in
                                   moved[["mean_1", "mean_2", "shift_in_sd"]].itertuples(index=False)])
        wide = cells.pivot_table(index=["method", "split"], columns="metric", values="cell", aggfunc="first",
                                 observed=True)
        print(wide[[m for m in SHIFT_METRICS if m in wide]].to_string())
    largest = moved.loc[moved["shift_in_sd"].idxmax()]
    unjudged = int((table[["verdict_1", "verdict_2"]] == TOO_FEW).any(axis=1).sum())
    print(f"\n{int(table['agree'].sum())} of {len(table)} verdicts agree (in {unjudged}, one run or both have "
          f"fewer than {MIN_REPLICATES} replicates and give none); {int(table['inside'].sum())} of "
          f"{len(table)} differences of run 2 lie inside run 1's interval. Largest shift: "
          f"{largest['method']}, {largest['split']}, {largest['metric']}: {largest['shift']:+.3f} "
          f"({largest['shift_in_sd']:.1f} sd)")
    return {"verdicts": table, "shifts": moved}


if __name__ == "__main__":
    main()
