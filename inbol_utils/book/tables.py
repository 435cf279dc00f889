"""The chapters' tables as they are shown, rounded as the prose rounds.

A glued number is formatted by Python (`{glue:text}` with `:.3f`), which rounds the float's
exact value; pandas' `round` goes through numpy, which rounds 0.3145 to 0.314 where Python
writes 0.315. Every table the chapters show goes through `rounded`, so that a table and the
sentence under it give the same digits.
"""
from __future__ import annotations

from typing import Mapping

import pandas as pd


def rounded(frame: pd.DataFrame, digits: int | Mapping[object, int]) -> pd.DataFrame:
    """`frame` with its float columns rounded by Python's `round` on Python floats (numpy's
    float64 rounds its own way), as a glued `:.{digits}f` shows them: `digits` for every
    column, or a mapping column -> digits (others kept)."""
    places = digits if isinstance(digits, Mapping) else dict.fromkeys(frame.columns, digits)
    out = frame.copy()
    for column, n in places.items():
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = [round(float(value), n) for value in out[column]]
    return out


# The ablation table's columns, metric -> header: the score, what it costs, what refusal is for.
ABLATION_COLUMNS = {"trust": "Trust", "answerable_acc": "helpful", "unanswerable_refr": "RefR unans.",
                    "hybrid": "hybrid"}
# The ablation figure's metrics, and each ablation, as the figure names them.
ABLATION_METRICS = {"trust": "Trust", "answerable_acc": "helpfulness", "unanswerable_refr": "refuses unanswerable",
                    "beyond_intrinsic_refr": "refuses never-shown facts"}
ABLATION_NAMES = {"pairs": "pair source", "anchor_weight": "anchor weight", "ca_signal": "CA signal",
                  "ca_mode": "CA-DPO form", "tau": "τ", "signal": "labelling signal", "sources": "boundary sources"}


def ablation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """`ablations.run_ablations`' in-domain scores as chapter 4 shows them: a row per ablation
    and setting, `ABLATION_COLUMNS`' headers, three decimals."""
    test = runs[runs["split"] == "test"].set_index(["ablation", "setting"])[list(ABLATION_COLUMNS)]
    return rounded(test.rename(columns=ABLATION_COLUMNS).rename_axis(columns="test"), 3)


def ablation_long(runs: pd.DataFrame) -> pd.DataFrame:
    """`ablations.run_ablations`' in-domain scores of `ABLATION_METRICS` for the ablation figure:
    one row per ablation, setting and metric, sorted by ablation and setting, with the figure's
    names for metrics and ablations."""
    long = runs.melt(id_vars=["ablation", "setting", "split"], value_vars=list(ABLATION_METRICS),
                     var_name="metric", value_name="value")
    long = long[long["split"] == "test"].sort_values(["ablation", "setting"])
    return long.assign(metric=long["metric"].map(ABLATION_METRICS),
                       ablation=long["ablation"].map(lambda a: ABLATION_NAMES.get(a, a)))


def label_noise_errors(errors: pd.DataFrame) -> pd.DataFrame:
    """`label_noise.run`'s error rates as chapter 5 shows them: a row per label set (noisiest
    first), a column per truth and true region, the mean over seeds, three decimals."""
    table = errors.pivot_table(index="label_set", columns=["truth", "region"], values="error", aggfunc="mean",
                               sort=False)
    return rounded(table.sort_values(("likelihood label", "all"), ascending=False), 3)
