"""Scoring, summarising and comparing: from a model's responses to every number of the book.

Three steps, each in one place:
  score      a model's responses to a split, each typed correct, refusal, hybrid or wrong
             (`answers.classify_response`) beside the query's ground truth: greedy answers
             (`predict`, `scorer`, `score_splits`), inference-time abstention
             (`abstention_responses`), the base model's own knowledge (`base_knowledge`);
  summarise  a scored frame -> the headline metrics (`summary`, built from the formulas of
             `metrics`), per run and as mean and spread over seeds;
  compare    methods against their rivals by seed-paired intervals on Trust and the metrics
             it is made of (`compare`, `comparisons`, `COMPARED`), and the verdicts read
             from them in the user's favour (`claim_holds`).
The results tables are written atomically (`write_tables`).
Running these over every seed's saved models is the protocol's job (`protocol.score_seed`).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import datasets
import numpy as np
import pandas as pd

from . import metrics, world
from .artifacts import atomic_file
from .answers import REFUSAL_RESPONSES, classify_response, normalize_answer
from .generation import answer_probability, generate_answers, greedy_answers
from .methods import BASE, COMPARISONS, IDKIT, INBOL, METHODS, REGISTRY
from .world import split_frame

TEST_SPLITS = ("test", "ood")
HEADLINE = ("acc", "refr", "err", "hybrid", "trust", "answerable_acc", "over_refusal", "known_acc",
            "known_refr", "unanswerable_refr", "beyond_intrinsic_refr", "truthful")
# Metrics that need the intrinsic boundary's ground truth (which queries are inside it): a real
# dataset has none, so on a real source they are left out rather than shown as a number.
NEEDS_INTRINSIC_TRUTH = ("over_refusal", "beyond_intrinsic_refr", "truthful")

VALIDATION_METRICS = ("trust", "acc", "refr", "answerable_acc", "over_refusal", "unanswerable_refr",
                      "beyond_intrinsic_refr")
# The metrics chapter 4 compares by seed-paired intervals: Trust, and what it is made of for a
# user (helpfulness, over-refusal, refusal of unanswerable queries): one operating point is not a verdict.
COMPARED = ("trust", "answerable_acc", "over_refusal", "unanswerable_refr")
# Metrics where less serves the user better: a method beats its rival when its value is lower.
LOWER_IS_BETTER = ("over_refusal", "aurc")
# The paper's two headline claims, each "method beats rival" (checked by `claim_holds`).
PAPER_CLAIMS = ((INBOL, BASE), (INBOL, IDKIT))


def measurable(columns, intrinsic_truth: bool) -> list[str]:
    """The metrics of `columns` that the source's ground truth supports (`sources.read_info`)."""
    return [c for c in columns if intrinsic_truth or c not in NEEDS_INTRINSIC_TRUTH]


# ---------------------------------------------------------------------------- score


def score(df: pd.DataFrame, responses: list[str]) -> pd.DataFrame:
    """Attach responses and their type (correct / refusal / hybrid / wrong) to a split frame."""
    df = df.copy()
    df["response"] = responses
    df["response_type"] = [classify_response(r, a) for r, a in zip(responses, df["answers"])]
    return df


def predict(model, processor, ds: datasets.Dataset, batch_size: int = 128,
            desc: str | None = "answering") -> pd.DataFrame:
    """Greedy answers for a whole split, scored."""
    responses = greedy_answers(model, processor, list(ds["image"]), ds["question"],
                               batch_size=batch_size, desc=desc)
    return score(split_frame(ds), responses)


def scorer(processor, ds: datasets.Dataset, batch_size: int = 150):
    """A function model -> its scored greedy answers on `ds` (the split read once, here)."""
    images, frame = list(ds["image"]), split_frame(ds)
    questions = frame["question"].tolist()

    def scored(model) -> pd.DataFrame:
        return score(frame, greedy_answers(model, processor, images, questions, batch_size=batch_size))

    return scored


def validation_probe(processor, ds: datasets.Dataset):
    """A function model -> headline metrics of its greedy answers on `ds` (the validation
    split), for selecting hyperparameters and checkpoints."""
    scored = scorer(processor, ds)

    def probe(model) -> dict[str, float]:
        result = summary(scored(model), c_values=())
        return {k: result[k] for k in VALIDATION_METRICS}

    return probe


def score_splits(model, processor, splits, **labels) -> pd.DataFrame:
    """Greedy responses on the in-domain and out-of-domain test splits, scored and labelled."""
    frames = [predict(model, processor, splits[name], desc=None).assign(split=name) for name in TEST_SPLITS]
    return pd.concat(frames, ignore_index=True).assign(**labels)


def majority(samples: Sequence[str]) -> tuple[str, float]:
    """The most frequent answer (after normalisation) and the share of samples that agree with
    it: a confidence that needs no gold answer, for abstention at test time."""
    counts = Counter(normalize_answer(s) for s in samples)
    answer, count = counts.most_common(1)[0]
    return answer, count / len(samples)


def abstention_responses(model, processor, ds, n_samples: int, threshold: float,
                         seed: int = 0, batch_size: int = 64) -> tuple[list[str], list[float]]:
    """Inference-time abstention, the strong baseline that costs N generations per query: sample
    N answers, answer with the majority one if at least `threshold` of the samples agree with
    it, refuse otherwise. There is no gold answer at test time, so agreement is the confidence."""
    samples = generate_answers(model, processor, list(ds["image"]), ds["question"],
                               num_samples=n_samples, temperature=1.0, seed=seed,
                               batch_size=batch_size, desc="abstention samples")
    votes = [majority(s) for s in samples]
    responses = [answer if agreement >= threshold else REFUSAL_RESPONSES[0] for answer, agreement in votes]
    return responses, [agreement for _, agreement in votes]


def score_abstention(model, processor, splits, n_samples: int, threshold: float, sampling_seed: int,
                     **labels) -> pd.DataFrame:
    """Inference-time abstention (`abstention_responses`) on both test splits, scored."""
    frames = []
    for name in TEST_SPLITS:
        responses, agreement = abstention_responses(model, processor, splits[name], n_samples, threshold,
                                                    sampling_seed)
        frames.append(score(split_frame(splits[name]), responses).assign(split=name, agreement=agreement))
    return pd.concat(frames, ignore_index=True).assign(**labels)


def base_knowledge(model, processor, splits, tau: float) -> np.ndarray:
    """Did this seed's base model know each test query's answer? Its exact probability of the
    gold answer is at least tau (the labelling's own rule, applied to the test queries): Cheng
    et al.'s "known" questions, measured on the model instead of read off the world's exposure."""
    known = []
    for name in TEST_SPLITS:
        ds = splits[name]
        probs = answer_probability(model, processor, list(ds["image"]), ds["question"], ds["answers"])
        known.append(np.asarray(probs) >= tau)
    return np.concatenate(known)


# ---------------------------------------------------------------------------- summarise


def _refusal_rate(types: pd.Series) -> float:
    return metrics.response_rates(types)["refr"]


def summary(df: pd.DataFrame, c_values: Sequence[float] = metrics.C_VALUES) -> dict:
    """The headline numbers of one scored frame, as one flat dict (one row of a results table).

    Keys: acc, refr, err, hybrid, n; trust (= Trust_1); trust_c{c:g} for each c
    ("trust_c0.5", "trust_c2"); answerable_acc (Acc on queries with a gold answer:
    helpfulness); over_refusal (RefR on queries inside the world's boundaries: answerable, any
    fact shown at least once); unanswerable_refr (RefR on "beyond-extrinsic");
    beyond_intrinsic_refr (RefR on "beyond-intrinsic"); truthful (Cheng et al.'s truthful rate,
    "known" read from the world's ground truth: inside its boundaries). Where the frame has a
    `base_known` column (the base model knew the answer: Cheng et al.'s "known" questions),
    also known_acc (Acc on them), known_refr (over-refusal measured against the model's own
    knowledge instead of the world's exposure) and truthful_known (the truthful rate with that
    knowledge). A rate over an empty subset is nan.
    """
    types = df["response_type"]
    out = metrics.response_rates(types)
    out["trust"] = metrics.trust_score(out["acc"], out["refr"], 1.0)
    for c in c_values:
        out[f"trust_c{c:g}"] = metrics.trust_score(out["acc"], out["refr"], c)
    out["answerable_acc"] = metrics.response_rates(types[df["answerable"].astype(bool)])["acc"]
    out["over_refusal"] = _refusal_rate(types[df["region_truth"] == "inside"])
    if "base_known" in df:
        known = df["base_known"].astype(bool)
        out["known_acc"] = metrics.response_rates(types[known])["acc"]
        out["known_refr"] = _refusal_rate(types[known])
    out["unanswerable_refr"] = _refusal_rate(types[df["region_truth"] == "beyond-extrinsic"])
    out["beyond_intrinsic_refr"] = _refusal_rate(types[df["region_truth"] == "beyond-intrinsic"])
    # Real data does not say which answerable queries are known: no ground-truth truthful rate.
    out["truthful"] = np.nan if (df["region_truth"] == world.REGION_UNKNOWN).any() else \
        metrics.truthful_rate(df.assign(known=df["region_truth"] == "inside"))
    if "base_known" in df:
        out["truthful_known"] = metrics.truthful_rate(df.assign(known=df["base_known"]))
    return out


def per_run(scored: pd.DataFrame, keys=("method", "seed", "split")) -> pd.DataFrame:
    """One row of metrics (`summary`) per (method, seed, split)."""
    rows = [{**dict(zip(keys, key)), **summary(group)} for key, group in scored.groupby(list(keys), sort=False)]
    return pd.DataFrame(rows)


def mean_spread(runs: pd.DataFrame, columns=HEADLINE, keys=("method", "split")) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of each metric."""
    return runs.groupby(list(keys), sort=False)[list(columns)].agg(["mean", "std"]).fillna(0.0)


def heldout_refusal(scored: pd.DataFrame) -> pd.DataFrame:
    """Refusal rate on in-domain queries beyond a boundary, for held-out entities and
    constructions (never in InBoL training) vs those training saw: does refusal generalise?
    One row per method, seed, kind and held-out flag, so that the spread over seeds shows."""
    beyond = scored[(scored["split"] == "test") & scored["region_truth"].isin(world.REGIONS[1:])].copy()
    beyond["kind"] = np.where(beyond["family"] == "unanswerable", "construction", "unseen fact")
    beyond["refused"] = beyond["response_type"] == "refusal"
    return (beyond.groupby(["method", "seed", "kind", "heldout"], sort=False)["refused"]
                  .agg(refusal_rate="mean", n="size").reset_index())


# The held-out table's column that says, in the figure's legend and the results file, whether
# InBoL's training split had the query's entity or construction.
SEEN = "seen in InBoL training"


def heldout_refusal_table(scored: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """`heldout_refusal` for `methods`, with `SEEN` ("seen" or "held out") beside the flag, so
    that the figure and the results file say it in words."""
    held = heldout_refusal(scored[scored["method"].isin(methods)])
    held[SEEN] = np.where(held["heldout"], "held out", "seen")
    return held


def heldout_spread(held: pd.DataFrame, methods: Sequence[str] = (IDKIT, INBOL)) -> pd.DataFrame:
    """Mean and sd over seeds of the refusal rate (`heldout_refusal_table`'s frame) per method,
    kind and `SEEN`, every combination present (nan where a source has none: a real source has
    no never-shown facts), so that the prose can read each cell by name."""
    rows = pd.MultiIndex.from_product([list(methods), ["construction", "unseen fact"], ["seen", "held out"]])
    return held.groupby(["method", "kind", SEEN])["refusal_rate"].agg(["mean", "std"]).reindex(rows)


def inside_refusals(scored: pd.DataFrame, by=("method", "seed", "qtype")) -> pd.DataFrame:
    """Over-refusal broken down: the shares of in-domain queries inside the world's boundaries
    that were refused, and that got an answer-then-refusal hybrid ("triangle not sure about
    that": an answer's words, then a refusal's, as a model that learnt both can run them together)."""
    inside = scored[(scored["split"] == "test") & (scored["region_truth"] == "inside")]
    flags = inside.assign(refused=inside["response_type"] == "refusal",
                          hybrid=inside["response_type"] == "hybrid")
    return flags.groupby(list(by), sort=False)[["refused", "hybrid"]].mean().reset_index()


def inside_refusal_rates(scored: pd.DataFrame, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Each method's shares of refusals and hybrids inside the world's boundaries
    (`inside_refusals`), per seed and then averaged over seeds, so that every replicate weighs
    the same; one row per method of `methods`, in that order."""
    per_seed = inside_refusals(scored, by=["method", "seed"])
    return per_seed.groupby("method")[["refused", "hybrid"]].mean().reindex(list(methods))


def region_composition(scored: pd.DataFrame, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """The share of each response type (correct, refusal, hybrid, wrong) in each ground-truth
    region, per method (`metrics.region_response_matrix`), one row per method and region that has
    queries: where each method answers and where it refuses."""
    shares = {m: metrics.region_response_matrix(scored[scored["method"] == m]).query("n > 0").drop(columns="n")
              for m in methods}
    return pd.concat(shares, names=["method", "region"]).reset_index()


def trust_by_c(runs: pd.DataFrame, c_values: Sequence[float]) -> pd.DataFrame:
    """Trust at each cost of a wrong answer `c` (`summary`'s trust_c columns), one row per run
    and c: the long table of Trust against c."""
    return pd.DataFrame([{"method": r["method"], "seed": r["seed"], "split": r["split"], "c": c,
                          "trust": r[f"trust_c{c:g}"]} for _, r in runs.iterrows() for c in c_values])


def accuracy_by(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Share of correct responses (and row count) per group."""
    return (df.assign(correct=df["response_type"] == "correct")
              .groupby(list(columns))["correct"].agg(accuracy="mean", n="size").reset_index())


def share_by(df: pd.DataFrame, column: str, kind: str = "correct") -> pd.Series:
    """Share of responses of `kind` (a response type) per value of `column`, as floats."""
    return (df["response_type"] == kind).groupby(df[column]).mean().astype(float)


# ---------------------------------------------------------------------------- compare


def compare(runs: pd.DataFrame, method: str, rivals, metric: str = "trust") -> pd.DataFrame:
    """`method` against each rival on each split: the seed-paired difference in `metric`
    (method minus rival, whichever way is better), its 95% interval and the verdict read from
    it in the user's favour (`metrics.paired_comparison`; lower is better for `LOWER_IS_BETTER`)."""
    rows = []
    for split in TEST_SPLITS:
        table = runs[runs["split"] == split].pivot(index="seed", columns="method", values=metric)
        for rival in rivals:
            result = metrics.paired_comparison(table[method], table[rival], lower_is_better=metric in LOWER_IS_BETTER)
            rows.append({"metric": metric, "rival": rival, "split": split, **result})
    return pd.DataFrame(rows)


def comparisons(runs: pd.DataFrame, compared: Sequence[str] = COMPARED,
                pairs: Mapping[str, Sequence[str]] = COMPARISONS) -> pd.DataFrame:
    """Every comparison of `pairs` (method -> rivals; the registry's `methods.COMPARISONS`) on
    every metric of `compared`, each method named by its label in the `method` column: one row
    per metric, method, rival and split. `diff` is always method minus rival; the verdict says
    whether the method serves the user better ("beats": higher Trust, helpfulness or refusal of
    unanswerable queries, lower over-refusal). Pass only the metrics the source measures
    (`measurable`): over-refusal is nan on a real source, and a nan has no paired difference."""
    frames = [compare(runs, method, rivals, metric).assign(method=REGISTRY[method].label)
              for metric in compared for method, rivals in pairs.items()]
    return pd.concat(frames, ignore_index=True)[["metric", "method", "rival", "split", "diff", "low", "high",
                                                  "verdict", "n"]]


def claim_verdicts(comparisons: pd.DataFrame, method: str, rival: str) -> pd.Series:
    """The seed-paired Trust verdicts of `method` against `rival` in `comparisons` (the frame of
    `comparisons()`), one per test split, indexed by split: what a claim "method beats rival"
    is read from."""
    rows = comparisons[(comparisons["metric"] == "trust") & (comparisons["method"] == REGISTRY[method].label)
                       & (comparisons["rival"] == rival)]
    if sorted(rows["split"]) != sorted(TEST_SPLITS):
        raise ValueError(f"no Trust comparison of {method!r} with {rival!r} on every test split; "
                         f"add it to methods.COMPARISONS")
    return rows.set_index("split")["verdict"]


def claim_holds(comparisons: pd.DataFrame, method: str, rival: str) -> bool:
    """Does `method` beat `rival` on Trust on every test split (`claim_verdicts`)? The paper's
    claims are of this kind. Fewer than `metrics.MIN_REPLICATES` seeds give no verdict
    (`metrics.TOO_FEW`), so no claim holds on them."""
    return bool((claim_verdicts(comparisons, method, rival) == metrics.VERDICTS[0]).all())


def disagreements(scored: pd.DataFrame, method: str, rivals: Sequence[str], n: int) -> pd.DataFrame:
    """The first `n` queries (by id) of a scored frame of one seed and split on which `method`'s
    response type differs from a rival's: their responses, one column per method (rivals first)."""
    kinds = scored.pivot_table(index="id", columns="method", values="response_type", aggfunc="first")
    responses = scored.pivot_table(index="id", columns="method", values="response", aggfunc="first")
    differs = np.logical_or.reduce([kinds[rival] != kinds[method] for rival in rivals])
    return responses.loc[kinds.index[differs][:n], [*rivals, method]]


# ---------------------------------------------------------------------------- write


def write_tables(folder: str | Path, tables: Mapping[str, pd.DataFrame], indexed: Sequence[str] = ()) -> None:
    """Write each results table (file name -> frame) as CSV into `folder`, made if missing; each
    through `artifacts.atomic_file`, so that an interrupted run never leaves half a table. Only
    the tables named in `indexed` keep their index (the main table's method and split)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        with atomic_file(Path(folder) / name) as handle:
            frame.to_csv(handle, index=name in indexed)
