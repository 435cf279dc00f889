"""Each replicate on its own: does a verdict rest on one replicate's world?

A verdict is read from the mean of the seed-paired differences and its interval. Each replicate
has its own world and base model, so one replicate unlike the others can carry the mean: with
three replicates, a large difference on one and small ones of the other sign on two can still
give a firm verdict. So beside the intervals the chapters show each replicate's difference, and
name every firm verdict ("beats" or "trails") that some replicate's difference contradicts: it
holds over the replicates, not on each world (`book.readings.replicate_reading` says it).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .methods import REGISTRY
from .metrics import VERDICTS

FIRM = (VERDICTS[0], VERDICTS[2])  # "beats", "trails": the verdicts a single replicate can contradict


def trust_by_seed(runs: pd.DataFrame, worlds: Mapping[int, int], labels: Mapping[str, str]) -> pd.DataFrame:
    """Each replicate's in-domain Trust per method, beside the world it drew: one row per seed
    ("seed 0"), a `world` column, then a column per method of `labels` (method -> the label
    shown, in the order shown). `runs` is `evaluation.per_run`'s frame; `worlds` maps each seed
    to its world (`results/base_models.csv`)."""
    table = runs[runs["split"] == "test"].pivot(index="seed", columns="method", values="trust")[list(labels)]
    table.insert(0, "world", [worlds[seed] for seed in table.index])
    return table.rename(columns=labels).rename(index=lambda seed: f"seed {seed}")


def differences(runs: pd.DataFrame, comparisons: pd.DataFrame) -> pd.DataFrame:
    """Every comparison's difference (method minus rival) on each seed: one row per metric,
    method, rival, split and seed, with the comparison's verdict and mean difference beside it.
    `runs` is `evaluation.per_run`'s frame; `comparisons` is `evaluation.comparisons`' (methods
    by label)."""
    by_label = {entry.label: key for key, entry in REGISTRY.items()}
    rows = []
    for c in comparisons.itertuples(index=False):
        table = runs[runs["split"] == c.split].pivot(index="seed", columns="method", values=c.metric)
        diff = table[by_label[c.method]] - table[c.rival]
        rows += [{"metric": c.metric, "method": c.method, "rival": c.rival, "split": c.split, "seed": seed,
                  "seed_diff": float(d), "diff": c.diff, "verdict": c.verdict} for seed, d in diff.items()]
    return pd.DataFrame(rows)


def contradicted(differences: pd.DataFrame) -> pd.DataFrame:
    """The firm verdicts that some replicate's own difference contradicts (a difference of the
    other sign than the mean, or none at all), with those seeds: one row per comparison."""
    firm = differences[differences["verdict"].isin(FIRM)]
    against = firm[np.sign(firm["seed_diff"]) != np.sign(firm["diff"])]
    keys = ["metric", "method", "rival", "split", "verdict"]
    return against.groupby(keys, sort=False)["seed"].agg(list).rename("seeds_against").reset_index()
