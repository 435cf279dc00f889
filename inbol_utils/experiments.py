"""Chapter 4's loops: score every method on both test splits, tabulate, and train ablation variants."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from . import confidence, evaluation, idk_data, metrics, modeling, recipes
from .answers import REFUSAL_RESPONSES

TEST_SPLITS = ("test", "ood")
HEADLINE = ("acc", "refr", "err", "trust", "answerable_acc", "over_refusal", "unanswerable_refr",
            "beyond_intrinsic_refr", "truthful")


def score_splits(model, processor, splits: dict[str, datasets.Dataset], **labels) -> pd.DataFrame:
    """Greedy responses on the in-domain and out-of-domain test splits, scored and labelled."""
    frames = [evaluation.predict(model, processor, splits[name], desc=f"{labels} {name}").assign(split=name)
              for name in TEST_SPLITS]
    return pd.concat(frames, ignore_index=True).assign(**labels)


def score_abstention(model, processor, splits, n_samples: int, threshold: float, sampling_seed: int,
                     **labels) -> pd.DataFrame:
    """Inference-time abstention on both test splits (see `confidence.abstention_responses`)."""
    frames = []
    for name in TEST_SPLITS:
        responses, agreement = confidence.abstention_responses(model, processor, splits[name], n_samples,
                                                               threshold, sampling_seed)
        frame = evaluation.score(evaluation.split_frame(splits[name]), responses)
        frames.append(frame.assign(split=name, agreement=agreement))
    return pd.concat(frames, ignore_index=True).assign(**labels)


def summary(frame: pd.DataFrame, c_values=metrics.C_VALUES) -> dict:
    """The headline metrics of one scored frame. `known` for the truthful rate is the world's
    ground truth: the query is answerable and its fact (if any) was shown."""
    result = metrics.summarize(frame, c_values)
    known = frame.assign(known=frame["region_truth"] == "inside")
    result["truthful"] = metrics.truthful_rate(known)
    return result


def per_run(scored: pd.DataFrame, keys=("method", "seed", "split")) -> pd.DataFrame:
    """One row of metrics per (method, seed, split)."""
    rows = [{**dict(zip(keys, key)), **summary(group)} for key, group in scored.groupby(list(keys), sort=False)]
    return pd.DataFrame(rows)


def mean_spread(runs: pd.DataFrame, columns=HEADLINE, keys=("method", "split")) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of each metric."""
    out = runs.groupby(list(keys), sort=False)[list(columns)].agg(["mean", "std"])
    return out.fillna(0.0)


def heldout_refusal(scored: pd.DataFrame) -> pd.DataFrame:
    """Refusal rate on in-domain queries beyond a boundary, for held-out entities and
    constructions (never in InBoL training) vs those training saw: does refusal generalise?
    One row per method, seed, kind and held-out flag, so that the spread over seeds shows."""
    beyond = scored[(scored["split"] == "test") & (scored["region_truth"] != "inside")].copy()
    beyond["kind"] = np.where(beyond["family"] == "unanswerable", "construction", "unseen fact")
    beyond["refused"] = beyond["response_type"] == "refusal"
    return (beyond.groupby(["method", "seed", "kind", "heldout"], sort=False)["refused"]
                  .agg(refusal_rate="mean", n="size").reset_index())


def inside_responses(scored: pd.DataFrame) -> pd.DataFrame:
    """In-domain responses to queries inside the world's boundaries, flagged `refused` and
    `answer_then_refusal`: a refusal whose first word is not how any trained refusal phrasing
    starts, i.e. an answer that drifted into refusal words ("triangle not sure about that").
    The second is the mark of a preference stage that lowered the chosen answers' likelihood
    too: the model no longer ends its answers."""
    inside = scored[(scored["split"] == "test") & (scored["region_truth"] == "inside")]
    refused = inside["response_type"] == "refusal"
    openers = {phrase.split()[0] for phrase in REFUSAL_RESPONSES}
    opens_with_answer = ~inside["response"].fillna("").str.split().str[0].isin(openers)
    return inside.assign(refused=refused, answer_then_refusal=refused & opens_with_answer)


def inside_refusals(scored: pd.DataFrame, by=("method", "seed", "qtype")) -> pd.DataFrame:
    """Over-refusal broken down: the shares of `inside_responses` refused, and refused after
    starting with an answer."""
    return (inside_responses(scored).groupby(list(by), sort=False)[["refused", "answer_then_refusal"]]
            .mean().reset_index())


@dataclass
class Variant:
    """One ablation run: how the labels are drawn and how the model is trained."""

    name: str
    tau: float = 0.5
    signal: str = "sampled_conf"  # a confidence column of the boundary table
    region_mix: dict = field(default_factory=dict)
    ca_mode: str = "weight"
    beta: float = 0.1
    sft_weight: float = 0.0  # an NLL anchor on the chosen responses (see dpo.CADPOTrainer)


def train_variant(variant: Variant, table: pd.DataFrame, probe_split: datasets.Dataset, base: Path,
                  out: Path, hyper: dict, seed: int, idk_model: Path | None = None) -> Path:
    """Relabel the probed queries, rebuild both training sets and train IDK-IT (unless an
    IDK-IT model trained on the same labels is given) and then CA-DPO. Returns the model path."""
    table = table.assign(confidence=table[variant.signal])
    table["region"] = confidence.place(table, table["confidence"], variant.tau)
    if idk_model is None:
        rows = idk_data.idk_instruction_rows(table, variant.region_mix, seed)
        idk_model = out / f"{variant.name}-idk_it"
        recipes.train_idk_it(base, idk_data.to_dataset(rows, probe_split, idk_data.IDK_FEATURES), idk_model,
                             hyper["idk_steps"], hyper["idk_lr"], hyper["idk_batch_size"], seed)
    pairs = idk_data.preference_rows(table, variant.region_mix, seed)
    path = out / variant.name
    recipes.train_preferences(idk_model, idk_data.to_dataset(pairs, probe_split, idk_data.PREFERENCE_FEATURES),
                              path, hyper["dpo_steps"], hyper["dpo_lr"], hyper["dpo_batch_size"], seed,
                              variant.beta, variant.tau, variant.ca_mode, variant.sft_weight)
    return path


def load_and_score(path: Path, splits, **labels) -> pd.DataFrame:
    model, processor = modeling.load(path)
    return score_splits(model, processor, splits, **labels)
