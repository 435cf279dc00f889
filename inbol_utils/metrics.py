"""The metrics' formulas: Acc, RefR, Err, Trust_c, region matrices, AUROC, knowledge quadrants,
and the paired comparison of two methods over seeds. Pure functions of scored rows or numbers;
`evaluation` combines them into each run's summary and each chapter's comparisons.

Rates are fractions of all queries in the frame. Each row of a results frame is one query with
its `response_type` (one of RESPONSE_TYPES, from answers.classify_response) and, where needed,
its ground-truth `region_truth` (one of TRUTHS: a region, or "unknown" for an answerable query
of a real dataset) and `answerable` flag.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from inbol_utils.answers import RESPONSE_TYPES
from inbol_utils.world import REGION_UNKNOWN, REGIONS, TRUTHS

C_VALUES = (0, 0.5, 1, 2, 4)


def _check_types(types: Sequence[str]) -> None:
    unknown = set(types) - set(RESPONSE_TYPES)
    if unknown:
        raise ValueError(f"unknown response types {sorted(unknown)}; expected {RESPONSE_TYPES}")


def response_rates(types: Sequence[str]) -> dict:
    """Acc, RefR and Err (= 1 - Acc - RefR) as fractions of all responses; nan when empty.
    Err includes the hybrids (an answer, then a refusal); `hybrid` is their share alone."""
    types = list(types)
    _check_types(types)
    n = len(types)
    if n == 0:
        return {"acc": math.nan, "refr": math.nan, "err": math.nan, "hybrid": math.nan, "n": 0}
    return {
        "acc": types.count("correct") / n,
        "refr": types.count("refusal") / n,
        "err": (types.count("wrong") + types.count("hybrid")) / n,
        "hybrid": types.count("hybrid") / n,
        "n": n,
    }


def trust_score(acc, refr, c: float = 1.0):
    """Trust_c = Acc - c * Err: a wrong answer costs the user c times what a right one gives.

    Refusals score 0. c = 1 is the "effective reliability" of Whitehead et al. (ECCV 2022);
    c = 0 is plain accuracy. Works on floats and on numpy arrays alike.
    """
    err = 1 - acc - refr
    return acc - c * err


def region_response_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Rows REGIONS, columns RESPONSE_TYPES (row-normalised) plus "n", the row's query count.

    A region with no queries gets a nan row and n = 0, so matrices from different runs always
    have the same shape. Real data's answerable queries, whose region is not known, get a row
    "unknown" of their own (only when there are any).
    """
    _check_types(df["response_type"])
    unknown = set(df["region_truth"]) - set(TRUTHS)
    if unknown:
        raise ValueError(f"unknown regions {sorted(unknown)}; expected {TRUTHS}")
    rows = list(REGIONS) + ([REGION_UNKNOWN] if (df["region_truth"] == REGION_UNKNOWN).any() else [])
    counts = (
        df.groupby(["region_truth", "response_type"]).size().unstack(fill_value=0)
        .reindex(index=rows, columns=list(RESPONSE_TYPES), fill_value=0)
    )
    n = counts.sum(axis=1)
    matrix = counts.div(n.where(n > 0), axis=0)
    matrix["n"] = n
    matrix.index.name, matrix.columns.name = "region_truth", None
    return matrix


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` for the positive `labels`; nan with one class only."""
    labels = np.asarray(labels, dtype=bool)
    if labels.size == 0 or labels.all() or not labels.any():
        return math.nan
    return float(roc_auc_score(labels, np.asarray(scores, dtype=float)))


def knowledge_quadrants(df: pd.DataFrame) -> dict:
    """Fractions of queries in the four knowledge quadrants of Cheng et al. (2024).

    Follows their evaluation code (OpenMOSS/Say-I-Dont-Know, cal_knowledge_quadrants.py): the
    first half of a name is whether the model's behaviour is right, the second whether the
    question is known. An answered query is placed by its correctness alone, whatever `known`
    says; a refused query by `known` (the ground-truth or probe label):
      Ik-Ik    (known knowns)      answered correctly
      Ik-Idk   (known unknowns)    refused, and the question is unknown: a right refusal
      Idk-Ik   (unknown knowns)    refused, but the question is known: over-conservative
      Idk-Idk  (unknown unknowns)  answered wrongly, known or not: a hallucination
    So a wrong answer on a known question counts as Idk-Idk, and a correct answer on an
    unknown question (a lucky guess, or a wrong label) as Ik-Ik. The four sum to 1.
    """
    types = df["response_type"]
    _check_types(types)
    known = df["known"].astype(bool)
    refused = types == "refusal"
    cells = {
        "Ik-Ik": types == "correct",
        "Ik-Idk": refused & ~known,
        "Idk-Ik": refused & known,
        "Idk-Idk": types.isin(["wrong", "hybrid"]),
    }
    n = len(df)
    return {name: float(cell.sum()) / n if n else math.nan for name, cell in cells.items()}


def truthful_rate(df: pd.DataFrame) -> float:
    """Cheng et al.'s truthful rate, Ik-Ik + Ik-Idk: right answers plus refused unknown queries."""
    quadrants = knowledge_quadrants(df)
    return quadrants["Ik-Ik"] + quadrants["Ik-Idk"]


VERDICTS = ("beats", "is level with", "trails")
# The fewest seeds a verdict is read from. With two, the interval has one degree of freedom, and
# two seeds that happen to agree give a narrow one whatever the methods' real spread: on
# easy-VQA two seeds gave "trails" on one machine and "is level with" on another.
MIN_REPLICATES = 3
TOO_FEW = "has too few replicates to be compared with"  # the outcome below MIN_REPLICATES: no verdict


def t_quantile(n: int, level: float = 0.95) -> float:
    """The Student t quantile that a two-sided `level` interval of the mean of `n` paired
    differences spans on each side, in standard errors (n - 1 degrees of freedom); infinite
    for one seed, which gives no interval."""
    return float(stats.t.ppf(0.5 + level / 2, n - 1)) if n > 1 else math.inf


def verdict(low: float, high: float, n: int, lower_is_better: bool = False) -> str:
    """The verdict an interval of a difference (method minus rival) over `n` seeds gives:
    "beats" when it lies above 0, "trails" when below, "is level with" when it contains 0, and
    none (TOO_FEW) from fewer than MIN_REPLICATES seeds, however narrow the interval. Where
    less is better for the user (`lower_is_better`: over-refusal, AURC) the reading turns:
    "beats" when the interval lies below 0, so a verdict always says which method serves the
    user better."""
    if n < MIN_REPLICATES:
        return TOO_FEW
    if lower_is_better:
        low, high = -high, -low
    return VERDICTS[0] if low > 0 else VERDICTS[2] if high < 0 else VERDICTS[1]


def paired_comparison(a: Sequence[float], b: Sequence[float], level: float = 0.95,
                      lower_is_better: bool = False) -> dict:
    """Compare method A with method B on the same seeds: the mean paired difference a_i - b_i
    and its two-sided t interval at `level`. The verdict is read from the interval: "beats"
    when it lies above 0, "trails" when below, "is level with" when it contains 0 (`verdict`);
    with `lower_is_better` the difference keeps its sign (A minus B) and only the reading
    turns: A "beats" B when the interval lies below 0.

    Pairing by seed removes what the two methods share (the seed's base model, probe and data),
    which is most of the spread. Fewer than MIN_REPLICATES (3) seeds give no verdict but
    TOO_FEW, whatever the interval: two seeds that happen to agree give a narrow one. The
    difference and interval are still returned (one seed: no finite interval).
    Returns {"diff", "low", "high", "verdict", "n"}.
    """
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diffs.ndim != 1 or len(diffs) == 0 or np.isnan(diffs).any():
        raise ValueError(f"need paired, non-missing values per seed; got differences {diffs}")
    n, mean = len(diffs), float(diffs.mean())
    half = float(t_quantile(n, level) * diffs.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    low, high = mean - half, mean + half
    return {"diff": mean, "low": low, "high": high, "verdict": verdict(low, high, n, lower_is_better), "n": n}
