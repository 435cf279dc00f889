"""Intrinsic confidence probes, and where they place each query.

Two signals of "does the model know this?", both per query:
  sampled     the fraction of N answers sampled at temperature T that are correct
              (as in Cheng et al. 2024), scored by the evaluation's own answer matcher;
  likelihood  the exact probability that one temperature-1 sample is correct: p(gold answer +
              end of turn) from one teacher-forced pass (`generation.answer_probability`).
With T = 1, the sampled confidence is an unbiased estimate of the likelihood one, so the two
should agree up to sampling noise; the likelihood costs one pass instead of N generations.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import metrics
from .answers import classify_response
from .generation import answer_probability, generate_answers
from .world import REGIONS, split_frame


def correct_fraction(samples: Sequence[str], gold: Sequence[str]) -> float:
    if len(samples) == 0:  # not `not samples`: an array of one empty answer is falsy, and a longer one ambiguous
        raise ValueError("need at least one sample")
    return float(np.mean([classify_response(s, list(gold)) == "correct" for s in samples]))


def probe(model, processor, ds, n_samples: int, temperature: float = 1.0,
          batch_size: int = 64, seed: int = 0) -> pd.DataFrame:
    """Greedy answer, `n_samples` sampled answers and the exact gold probability for every row.

    Returns one row per query with the split's ground-truth columns, `greedy`, `samples` (a
    list), `likelihood_conf` and `greedy_correct`. Sampled confidence for any N <= n_samples is
    `sampled_confidence(frame, N)`, so one probe serves the whole N sweep.
    """
    images, questions = list(ds["image"]), ds["question"]
    frame = split_frame(ds)
    gold = frame["answers"].tolist()
    frame["greedy"] = [a[0] for a in generate_answers(model, processor, images, questions,
                                                      batch_size=batch_size, desc="greedy")]
    frame["samples"] = generate_answers(model, processor, images, questions, num_samples=n_samples,
                                        temperature=temperature, batch_size=batch_size,
                                        seed=seed, desc=f"{n_samples} samples")
    frame["likelihood_conf"] = answer_probability(model, processor, images, questions, gold,
                                                  desc="likelihood")
    frame["greedy_correct"] = [classify_response(g, a) == "correct"
                               for g, a in zip(frame["greedy"], gold)]
    return frame


def sampled_confidence(frame: pd.DataFrame, n: int) -> pd.Series:
    """Fraction of the first `n` samples that are correct (0 for unanswerable queries)."""
    return pd.Series([correct_fraction(s[:n], a) for s, a in zip(frame["samples"], frame["answers"])],
                     index=frame.index)


def sampling_error(likelihood: Sequence[float], n: int) -> float:
    """The mean |sampled - likelihood| confidence that sampling noise alone would give: for a
    query answered correctly with probability p, the share correct among n samples is
    Binomial(n, p) / n, whose mean absolute deviation from p this averages over the queries."""
    p = np.asarray(likelihood, dtype=float)[:, None]
    k = np.arange(n + 1)[None, :]
    return float((stats.binom.pmf(k, n, p) * np.abs(k / n - p)).sum(axis=1).mean())


def place(frame: pd.DataFrame, confidence: pd.Series, tau: float) -> pd.Series:
    """The study's refusal rule: beyond the extrinsic boundary if the query is an unanswerable
    construction; else beyond the intrinsic boundary if confidence < tau; else inside."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1], got {tau}")
    region = np.where(~frame["answerable"], REGIONS[2],
                      np.where(confidence < tau, REGIONS[1], REGIONS[0]))
    return pd.Series(region, index=frame.index, name="region")


def labelled(probe: pd.DataFrame, signal: str, tau: float) -> pd.DataFrame:
    """The probe with the confidence that labels the data, its column `signal`, as `confidence`,
    and the region the refusal rule gives each query at `tau` (`place`) as `region`."""
    table = probe.assign(confidence=probe[signal])
    table["region"] = place(table, table["confidence"], tau)
    return table


def greedy_agreement(frame: pd.DataFrame, region: pd.Series) -> float:
    """How closely labels follow the model's own answers: on the answerable queries, the share
    labelled inside exactly when the greedy answer is right."""
    answerable = frame["answerable"]
    return float(((region[answerable] == REGIONS[0]) == frame.loc[answerable, "greedy_correct"]).mean())


def threshold_sweep(frame: pd.DataFrame, signals: Mapping[str, pd.Series], taus: Sequence[float]) -> pd.DataFrame:
    """Each signal's labels at each threshold: the share placed beyond the intrinsic boundary and
    their `greedy_agreement`, one row per signal (`N`, its name) and `tau`. Where the two curves
    cross is how chapter 1 reads the choice of N and tau."""
    rows = []
    for name, signal in signals.items():
        for tau in taus:
            region = place(frame, signal, tau)
            rows.append({"N": str(name), "tau": tau, "share labelled beyond-intrinsic": (region == REGIONS[1]).mean(),
                         "agreement with greedy correctness": greedy_agreement(frame, region)})
    return pd.DataFrame(rows)


def probe_summary(probe: pd.DataFrame) -> dict[str, float]:
    """One seed's probe in four figures: the share labelled beyond the intrinsic boundary, how
    well each signal tells shown facts from never-shown ones (AUROC; nan where the source records
    no exposure) and the mean likelihood confidence on answerable queries."""
    knowledge = probe[probe["answerable"] & (probe["family"] == "knowledge")]
    shown = knowledge["exposure"] > 0
    return {"beyond-intrinsic share": (probe["region"] == REGIONS[1]).mean(),
            "AUROC sampled (fact shown)": metrics.auroc(knowledge["sampled_conf"], shown),
            "AUROC likelihood (fact shown)": metrics.auroc(knowledge["likelihood_conf"], shown),
            "mean likelihood conf (answerable)": probe.loc[probe["answerable"], "likelihood_conf"].mean()}
