"""Frontiers, not one operating point: each model's risk-coverage curve (selective prediction).

A model's greedy answers put it at one point of a trade-off: the share of queries it answers
(coverage) and the share of those it gets right (selective accuracy). Two methods at different
points cannot be ranked by Trust alone: one may answer more and err more at the same skill.
So each model also ranks the queries by its own propensity to refuse,

    s(x) = log p(refusal | x) - log p(a*(x) | x),

and answers the k queries of lowest s for k = 1..n: its whole frontier. Here
  refusal  the model's canonical refusal: the refusal it gives most often among its greedy
           answers to the test splits (its favourite of `answers.REFUSAL_RESPONSES`, which the
           IDK data draws from uniformly; "i don't know" for a model that never refuses).
           One phrasing stands for all: where the choice of phrasing does not depend on the
           query, log p(phrasing | x) is log p(refusal | x) plus a constant, which ranks alike;
  a*(x)    the model's best non-refusal answer: its greedy answer when that is not a refusal,
           otherwise greedy decoding with the first tokens of every refusal phrasing banned
           (`refusal_starts`). An answered unanswerable query is wrong, and a hybrid (an answer,
           then a refusal) counts as answered, as in every other metric of the study.
The summary is AURC (Geifman and El-Yaniv): the mean risk (1 - selective accuracy) over
coverages k/n, k = 1..n; lower is better. Two methods with the same AURC but different
operating points sit on one frontier at different places; a lower AURC is a frontier that lies
below (in risk), i.e. above in selective accuracy: a better ranking of what the model knows.

Pure functions of scored rows (`curve`, `aurc`, `operating_point`, `points`), and the expensive
job (`saved_propensities`: constrained generation for the refused queries, two likelihoods per
query), saved beside the model's scores so that a rerun with unchanged models costs nothing.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import chat, modeling, world
from .answers import REFUSAL_RESPONSES, classify_response
from .evaluation import TEST_SPLITS
from .generation import greedy_answers, response_logprobs
from .methods import BASE, COMPARISONS, REGISTRY, TRAINED
from .protocol import model_dir, saved_scores, seed_dir
from .runner.reuse import recipe, recipe_of

# The models with a frontier: every model that answers greedily (the base model's ranking is its
# own likelihood of its answer, the reference a refusal-trained model should beat). Abstention's
# answers come from sampling, and the majority answer of a query it refused is not kept.
METHODS = (BASE, *TRAINED)
# Chapter 4's comparisons (`methods.COMPARISONS`) between models that have a frontier.
PAIRS = {method: tuple(r for r in rivals if r in METHODS) for method, rivals in COMPARISONS.items()
         if method in METHODS}
GRID = tuple(np.round(np.linspace(0.05, 1.0, 20), 2))  # coverages at which the results tables keep a curve
BATCH_SIZE = 128


# ---------------------------------------------------------------------------- curves


def curve(propensity: Sequence[float], correct: Sequence[bool]) -> pd.DataFrame:
    """The risk-coverage curve of one model on one split: answer the k queries of lowest
    propensity to refuse, k = 1..n; one row per k with `coverage` k/n and
    `selective_accuracy`, the share of those k answers that are correct. Queries of equal
    propensity have no order, so within a tie each count is its expected value over the tie's
    orders (the tie's accuracy, pro rata), and no arbitrary tie-break moves the curve."""
    p = np.asarray(propensity, dtype=float)
    if p.size == 0 or np.isnan(p).any():
        raise ValueError(f"need a non-empty propensity with no nan, got {p.size} values")
    order = np.argsort(p, kind="stable")
    p, hits = p[order], np.concatenate([[0.0], np.cumsum(np.asarray(correct, dtype=float)[order])])
    k = np.arange(1, p.size + 1)
    start, end = np.searchsorted(p, p, "left"), np.searchsorted(p, p, "right")  # each query's tie
    expected = hits[start] + (k - start) * (hits[end] - hits[start]) / (end - start)
    return pd.DataFrame({"coverage": k / p.size, "selective_accuracy": expected / k})


def aurc(propensity: Sequence[float], correct: Sequence[bool]) -> float:
    """Area under the risk-coverage curve: the mean of 1 - selective accuracy over the
    coverages k/n, k = 1..n (Geifman and El-Yaniv). Lower is better; for a given accuracy the
    lowest comes from the ranking that answers every right answer before any wrong one."""
    return float(1 - curve(propensity, correct)["selective_accuracy"].mean())


def operating_point(answered: Sequence[bool], correct: Sequence[bool]) -> dict[str, float]:
    """Where the model's own greedy answers sit on the plane: the share of queries answered
    (coverage) and the share of those that are correct (selective accuracy; nan when it
    answers nothing)."""
    answered, correct = np.asarray(answered, dtype=bool), np.asarray(correct, dtype=bool)
    return {"coverage": float(answered.mean()),
            "selective_accuracy": float(correct[answered].mean()) if answered.any() else math.nan}


def on_grid(frontier: pd.DataFrame, grid: Sequence[float] = GRID) -> pd.DataFrame:
    """A curve (`curve`) at the coverages of `grid`: the selective accuracy of the first
    ceil(c * n) answers for each coverage c, so that curves of any n share their points."""
    n = len(frontier)
    k = np.maximum(np.ceil(np.asarray(grid) * n - 1e-9).astype(int), 1)
    accuracy = frontier["selective_accuracy"].to_numpy()[k - 1]
    return pd.DataFrame({"coverage": list(grid), "selective_accuracy": accuracy})


def points(rows: pd.DataFrame, keys: Sequence[str] = ("method", "seed", "split"),
           grid: Sequence[float] = GRID) -> pd.DataFrame:
    """Every run's frontier as points of the coverage-accuracy plane, for the figure and the
    results file: its curve on `grid` (`point` "curve") and its greedy operating point
    (`point` "greedy"), each row with the run's `aurc`. `rows` holds one row per query with
    `propensity`, `correct` and `answered` (`saved_propensities`) and the `keys`."""
    frames = []
    for key, run in rows.groupby(list(keys), sort=False):
        labels = dict(zip(keys, key), aurc=aurc(run["propensity"], run["correct"]))
        greedy = pd.DataFrame([operating_point(run["answered"], run["correct"])]).assign(point="greedy")
        frames += [on_grid(curve(run["propensity"], run["correct"]), grid).assign(point="curve", **labels),
                   greedy.assign(**labels)]
    return pd.concat(frames, ignore_index=True)[[*keys, "point", "coverage", "selective_accuracy", "aurc"]]


def per_run(frontier_points: pd.DataFrame, keys: Sequence[str] = ("method", "seed", "split")) -> pd.DataFrame:
    """One row per run (`points`' output): its AURC and its greedy operating point, named as
    `evaluation.comparisons` reads metrics (`aurc`, `coverage`, `selective_accuracy`)."""
    greedy = frontier_points[frontier_points["point"] == "greedy"]
    return greedy[[*keys, "aurc", "coverage", "selective_accuracy"]].reset_index(drop=True)


# ---------------------------------------------------------------------------- the model's propensity


def refusal_starts(processor) -> list[list[int]]:
    """The first token of every refusal phrasing as the model writes it (after the template's
    lead), each as one banned sequence for `generate(bad_words_ids=...)`: with them banned, the
    model's greedy answer is its best answer that does not start a refusal."""
    lead = chat.turn(processor).lead
    ids = processor.tokenizer([lead + r for r in REFUSAL_RESPONSES], add_special_tokens=False)["input_ids"]
    return [[token] for token in sorted({row[0] for row in ids})]


def canonical_refusal(responses: Sequence[str], types: Sequence[str]) -> str:
    """The refusal a model gives most often (ties: the first in alphabetical order), or the
    first of `REFUSAL_RESPONSES` for a model that never refuses (the base model)."""
    counts = Counter(r for r, t in zip(responses, types) if t == "refusal")
    if not counts:
        return REFUSAL_RESPONSES[0]
    return min(counts, key=lambda r: (-counts[r], r))


def propensities(model, processor, images: Sequence, scored: pd.DataFrame,
                 batch_size: int = BATCH_SIZE) -> pd.DataFrame:
    """Each query's propensity to refuse (module docstring) from a model's scored greedy answers
    (`scored`: `question`, `answers`, `response`, `response_type`, in the order of `images`):
    `answered` (its greedy answer is not a refusal), `answer` (a*), `correct` (a* is), the
    canonical `refusal`, both log-probabilities and `propensity`. Only the refused queries are
    decoded again; both likelihoods go through one batched teacher-forced pass."""
    questions, gold = scored["question"].tolist(), scored["answers"].tolist()
    answered = (scored["response_type"] != "refusal").to_numpy()
    best = scored["response"].tolist()
    refused = np.flatnonzero(~answered)
    if refused.size:
        constrained = greedy_answers(model, processor, [images[i] for i in refused], [questions[i] for i in refused],
                                     batch_size=batch_size, bad_words_ids=refusal_starts(processor))
        for i, answer in zip(refused, constrained):
            best[i] = answer
    refusal = canonical_refusal(scored["response"], scored["response_type"])
    n = len(questions)
    logps = response_logprobs(model, processor, list(images) * 2, questions * 2, [refusal] * n + best,
                              batch_size=batch_size).numpy()
    return pd.DataFrame({"id": scored["id"].to_numpy(), "split": scored["split"].to_numpy(), "answered": answered,
                         "answer": best, "correct": [classify_response(a, g) == "correct" for a, g in zip(best, gold)],
                         "refusal": refusal, "refusal_logp": logps[:n], "answer_logp": logps[n:],
                         "propensity": logps[:n] - logps[n:]})


def saved_propensities(path: Path, model_path: Path, world_path: Path, scores_path: Path,
                       load=modeling.load) -> pd.DataFrame:
    """`propensities` of the model at `model_path` on both test splits of the world at
    `world_path`, from its saved greedy scores (`scores_path`, `protocol.saved_greedy_scores`'s
    file), through `protocol.saved_scores`: made again only when the model, the world or
    those scores changed."""
    made_from = recipe(job="frontier", model=recipe_of(model_path), world=recipe_of(world_path),
                       scores=recipe_of(scores_path))

    def make() -> pd.DataFrame:
        scored = pd.read_parquet(scores_path)
        ids, images = [], []
        for name in TEST_SPLITS:
            ds = world.load_split(world_path, name)
            ids, images = ids + list(ds["id"]), images + list(ds["image"])
        if scored["id"].tolist() != ids:
            raise ValueError(f"{scores_path} does not score the test splits of {world_path} in their order: "
                             "rerun notebook 04's scoring")
        return propensities(*load(model_path), images, scored)

    return saved_scores(path, made_from, make)


def frontier_job(artifacts: str, seed: int, method: str, world_path: str) -> pd.DataFrame:
    """One model's propensities on both test splits (`saved_propensities`), saved to
    seed<s>/scores/<key>.frontier.parquet beside its greedy scores, labelled with its method
    and seed. A job for `parallel.run`: one per (seed, method)."""
    scores = seed_dir(artifacts, seed) / "scores"
    key = REGISTRY[method].key
    frame = saved_propensities(scores / f"{key}.frontier.parquet", model_dir(seed_dir(artifacts, seed), method),
                               Path(world_path), scores / f"{key}.parquet")
    return frame.assign(method=method, seed=seed)
