"""Chapter 4's loops: score every method of every seed on both test splits, compare methods by
seed-paired intervals, and train the ablation variants."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import confidence, evaluation, idk_data, metrics, modeling, parallel, protocol, world
from .artifacts import atomic_file
from .generation import answer_probability
from .reuse import recipe, recipe_of, reuse

TEST_SPLITS = ("test", "ood")
HEADLINE = ("acc", "refr", "err", "hybrid", "trust", "answerable_acc", "over_refusal", "known_acc",
            "known_refr", "unanswerable_refr", "beyond_intrinsic_refr", "truthful")
# Metrics that need the intrinsic boundary's ground truth (which queries are inside it): a real
# dataset has none, so on a real source they are left out rather than shown as a number.
NEEDS_INTRINSIC_TRUTH = ("over_refusal", "beyond_intrinsic_refr", "truthful")


def measurable(columns, intrinsic_truth: bool) -> list[str]:
    """The metrics of `columns` that the source's ground truth supports (`sources.read_info`)."""
    return [c for c in columns if intrinsic_truth or c not in NEEDS_INTRINSIC_TRUTH]


def score_splits(model, processor, splits, **labels) -> pd.DataFrame:
    """Greedy responses on the in-domain and out-of-domain test splits, scored and labelled."""
    frames = [evaluation.predict(model, processor, splits[name], desc=None).assign(split=name)
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


def saved_scores(path: Path, made_from: str, score) -> pd.DataFrame:
    """`score()`'s frame, written to `path` (parquet), or the frame of an earlier run made from
    the same recipe (`reuse`): a model that did not change is not scored again."""
    def make() -> pd.DataFrame:
        frame = score()
        with atomic_file(path, "wb") as handle:
            frame.to_parquet(handle)
        return frame

    return reuse(path, made_from, make)


def saved_greedy_scores(path: Path, model_path: Path, world_path: Path, splits, load=modeling.load,
                        **labels) -> pd.DataFrame:
    """`score_splits` of the model at `model_path`, through `saved_scores`: its recipe is the
    model's and the world's, so it is scored again only when one of them changed."""
    made_from = recipe(job="greedy scores", model=recipe_of(model_path), world=recipe_of(world_path))
    return saved_scores(path, made_from, lambda: score_splits(*load(model_path), splits, **labels))


def score_seed(artifacts: str, seed: int, methods: list[str], abstain_samples: int,
               abstain_threshold: float) -> pd.DataFrame:
    """Every method of one seed on both test splits, one scored row per (method, query), with
    `base_known` from that seed's base model; each model's scores saved to
    seed<s>/scores/<key>.parquet. A job for `parallel.run`: one per seed."""
    home = protocol.seed_dir(artifacts, seed)
    world_path = protocol.world_dir(artifacts)
    splits = {name: world.load_split(world_path, name) for name in TEST_SPLITS}
    tau = idk_data.load_labelling(home / "idk_it")["tau"]
    base_path = home / "base_model"
    scores = home / "scores"
    load = functools.cache(modeling.load)  # the base model serves three jobs: load it once
    base_made = dict(model=recipe_of(base_path), world=recipe_of(world_path))
    frames = [saved_greedy_scores(scores / "base.parquet", base_path, world_path, splits, load, method="base"),
              saved_scores(scores / "abstain.parquet",
                           recipe(job="abstention scores", n=abstain_samples, threshold=abstain_threshold,
                                  seed=seed, **base_made),
                           lambda: score_abstention(*load(base_path), splits, abstain_samples,
                                                    abstain_threshold, seed, method="base + abstention"))]
    frames += [saved_greedy_scores(scores / f"{protocol.METHODS[method].key}.parquet",
                                   protocol.model_dir(home, method), world_path, splits, load, method=method)
               for method in methods]
    known = saved_scores(scores / "base_known.parquet", recipe(job="base knowledge", tau=tau, **base_made),
                         lambda: pd.DataFrame({"base_known": base_knowledge(*load(base_path), splits, tau)}))
    return pd.concat([f.assign(base_known=known["base_known"].to_numpy()) for f in frames],
                     ignore_index=True).assign(seed=seed)


def summary(frame: pd.DataFrame, c_values=metrics.C_VALUES) -> dict:
    """The headline metrics of one scored frame, with two truthful rates: `known` from the
    world's ground truth (answerable and its fact, if any, shown) and from the base model's own
    knowledge (`base_known`)."""
    result = metrics.summarize(frame, c_values)
    # Real data does not say which answerable queries are known: no ground-truth truthful rate.
    result["truthful"] = np.nan if (frame["region_truth"] == world.REGION_UNKNOWN).any() else \
        metrics.truthful_rate(frame.assign(known=frame["region_truth"] == "inside"))
    result["truthful_known"] = metrics.truthful_rate(frame.assign(known=frame["base_known"]))
    return result


def per_run(scored: pd.DataFrame, keys=("method", "seed", "split")) -> pd.DataFrame:
    """One row of metrics per (method, seed, split)."""
    rows = [{**dict(zip(keys, key)), **summary(group)} for key, group in scored.groupby(list(keys), sort=False)]
    return pd.DataFrame(rows)


def mean_spread(runs: pd.DataFrame, columns=HEADLINE, keys=("method", "split")) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of each metric."""
    return runs.groupby(list(keys), sort=False)[list(columns)].agg(["mean", "std"]).fillna(0.0)


def compare(runs: pd.DataFrame, method: str, rivals, metric: str = "trust") -> pd.DataFrame:
    """`method` against each rival on each split: the seed-paired difference in `metric`, its
    95% interval and the verdict read from it (`metrics.paired_comparison`)."""
    rows = []
    for split in TEST_SPLITS:
        table = runs[runs["split"] == split].pivot(index="seed", columns="method", values=metric)
        for rival in rivals:
            result = metrics.paired_comparison(table[method], table[rival])
            rows.append({"split": split, "rival": rival, **result})
    return pd.DataFrame(rows)


def heldout_refusal(scored: pd.DataFrame) -> pd.DataFrame:
    """Refusal rate on in-domain queries beyond a boundary, for held-out entities and
    constructions (never in InBoL training) vs those training saw: does refusal generalise?
    One row per method, seed, kind and held-out flag, so that the spread over seeds shows."""
    beyond = scored[(scored["split"] == "test") & scored["region_truth"].isin(world.REGIONS[1:])].copy()
    beyond["kind"] = np.where(beyond["family"] == "unanswerable", "construction", "unseen fact")
    beyond["refused"] = beyond["response_type"] == "refusal"
    return (beyond.groupby(["method", "seed", "kind", "heldout"], sort=False)["refused"]
                  .agg(refusal_rate="mean", n="size").reset_index())


def inside_refusals(scored: pd.DataFrame, by=("method", "seed", "qtype")) -> pd.DataFrame:
    """Over-refusal broken down: the shares of in-domain queries inside the world's boundaries
    that were refused, and that got an answer-then-refusal hybrid ("triangle not sure about
    that": the mark of a preference stage that lowered the chosen answers' likelihood too)."""
    inside = scored[(scored["split"] == "test") & (scored["region_truth"] == "inside")]
    flags = inside.assign(refused=inside["response_type"] == "refusal",
                          hybrid=inside["response_type"] == "hybrid")
    return flags.groupby(list(by), sort=False)[["refused", "hybrid"]].mean().reset_index()


# ---------------------------------------------------------------------------- ablations


@dataclass
class Variant:
    """One ablation run of InBoL on the first seed: one choice changed, the rest as chosen.

    `labelling` (tau, confidence_signal, region_mix), when given, relabels the probe: a new
    IDK-IT set, a new IDK-IT model (the chosen IDK-IT settings) and its own on-policy pairs.
    `settings` override InBoL's chosen settings (anchor_weight, ca_mode, ca_signal...).
    `pairs="base samples"` trains on the off-policy pairs of notebook 02 instead."""

    ablation: str
    setting: str
    labelling: dict | None = None
    settings: dict = field(default_factory=dict)
    pairs: str = "on-policy"

    @property
    def name(self) -> str:
        return f"{self.ablation}-{self.setting}".replace(" ", "_")


def run_variant(variant: Variant, artifacts: str, seed: int, chosen: dict, pair_samples: int,
                temperature: float, base_known: np.ndarray) -> pd.DataFrame:
    """Train one variant (see `Variant`) and score it on both test splits; `base_known` is the
    seed's column of the same name from `score_seed` (the rows come in the same order). A job
    for `parallel.run`."""
    home, world_path = protocol.seed_dir(artifacts, seed), protocol.world_dir(artifacts)
    out = Path(artifacts) / "ablations" / variant.name
    idk_model, data = protocol.model_dir(home, protocol.IDKIT), home / "preferences"
    if variant.pairs == "base samples":
        data = home / "preferences_base"
    if variant.labelling is not None:
        probe = world.load_split(world_path, "probe")
        protocol.make_training_data(home, variant.labelling, probe, out, seed)
        idk_model = protocol.model_dir(out, protocol.IDKIT)
        idkit = chosen[protocol.IDKIT]
        protocol.train_method(protocol.IDKIT, idkit, str(out), str(home / "base_model"),
                              str(idk_model), str(world_path), stop_at=idkit["stop_at"])
        protocol.build_pairs(str(out), str(idk_model), str(world_path), pair_samples, temperature, seed)
        data = out / "preferences"
    inbol = chosen[protocol.INBOL]
    model = out / "model"
    protocol.train_method(protocol.INBOL, {**inbol, **variant.settings}, str(home),
                          str(idk_model), str(model), str(world_path), stop_at=inbol["stop_at"],
                          data=str(data))
    splits = {name: world.load_split(world_path, name) for name in TEST_SPLITS}
    scored = saved_greedy_scores(out / "scores.parquet", model, world_path, splits)
    return scored.assign(ablation=variant.ablation, setting=variant.setting, base_known=base_known, seed=seed)


def run_variants(variants: list[Variant], artifacts: str, seed: int, chosen: dict,
                 pair_samples: int, temperature: float, base_known: np.ndarray,
                 workers: int) -> pd.DataFrame:
    jobs = [dict(variant=v, artifacts=artifacts, seed=seed, chosen=chosen, pair_samples=pair_samples,
                 temperature=temperature, base_known=base_known) for v in variants]
    return pd.concat(parallel.run(run_variant, jobs, workers), ignore_index=True)
