"""When does confidence awareness matter? CA-DPO against vanilla DPO on labels of known noise.

CA-DPO's case is that a boundary label resting on a confidence near tau may lie on the wrong side
of the boundary, so its pairs should count for less. The generated world records the true
boundary, so this study can make labels of known noise and ask whether down-weighting pays
exactly when the labels are wrong:

  label sets  half B of each seed's probe relabelled (`confidence.place`, chapter 2's tau) from
              the sampled confidence of the base model's first N probe samples, for each N of
              `n_values` (fewer samples, noisier labels), and from the exact likelihood (no
              sampling noise: the low-noise end). Half A, the IDK-IT set and the IDK-IT model stay
              as chapters 2 and 3 made them, so only the preference stage sees the noise;
  errors      each set's labels against the exact-likelihood label (what the base model knows:
              the disagreement is the probe's sampling noise, the x axis of the curve) and against
              the world's ground truth (`region_truth`: a fact never shown lies beyond), over half
              B's answerable queries (an unanswerable one is labelled by its construction and is
              never wrong), overall and by true region;
  pairs       built under each set's labels from the same samples of the seed's IDK-IT model
              (`protocol.POLICY_SAMPLES`), so the labels are all that changes; CA-DPO's certainty
              uses the set's own confidences, as a user of that probe would have them;
  training    vanilla DPO and CA-DPO (InBoL) on each set's pairs with chapter 3's chosen settings
              and steps, from the seed's IDK-IT model, scored on both test splits. A set whose
              labels are chapter 2's is the main table's point: its models are the main table's.
Everything lives under <artifacts>/label_noise/seed<s>/<set>/, and every job is reused like the
rest (`runner.reuse`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import confidence, dpo, evaluation, idk_data, metrics, protocol, world
from .artifacts import require
from .methods import DPO, IDKIT, INBOL, REGISTRY
from .runner import parallel
from .runner.reuse import recipe, recipe_of, reuse

LIKELIHOOD = "likelihood"  # the label set read from the exact likelihood
METHODS = (DPO, INBOL)  # what each label set trains: CA-DPO and the same stage without the CA term
# The differences the chapter draws (CA-DPO minus DPO), metric -> name.
COMPARED = {"trust": "Trust", "answerable_acc": "helpfulness", "unanswerable_refr": "refuses unanswerable"}
# What a label is checked against: the exact-likelihood label, the base model's true boundary (a
# sampled label's disagreement with it is the probe's noise), and the world's boundary.
TRUTHS = {"likelihood label": "likelihood_region", "ground truth": "region_truth"}


def label_sets(n_values: Sequence[int]) -> list[str]:
    """The label sets' names, noisiest first: "N=<n>" for each probe size, then the likelihood."""
    return [f"N={n}" for n in sorted(set(n_values))] + [LIKELIHOOD]


def set_confidence(boundary: pd.DataFrame, name: str) -> pd.Series:
    """The confidence label set `name` reads for every row of `boundary` (chapter 1's probe,
    with its `samples`): the share correct among the first N samples, or the exact likelihood."""
    if name == LIKELIHOOD:
        return boundary["likelihood_conf"].astype(float)
    n = int(name.removeprefix("N="))
    have = min(len(s) for s in boundary["samples"])
    if n > have:
        raise ValueError(f"label set {name} needs {n} probe samples per query, but chapter 1 drew {have}: "
                         f"lower noise_n_values to at most {have}, or raise n_samples in 01_boundary_definition")
    # As lists: a parquet file gives arrays, and an array of one empty answer is falsy.
    return confidence.sampled_confidence(boundary.assign(samples=boundary["samples"].map(list)), n)


def relabel(labels: pd.DataFrame, boundary: pd.DataFrame, name: str, tau: float) -> pd.DataFrame:
    """Half B of chapter 2's `labels` with label set `name`'s confidence and region, and the
    exact-likelihood label beside it (`likelihood_region`), for the error counts."""
    half_b = labels[labels["half"] == "B"].reset_index(drop=True)
    probed = boundary.set_index("id").loc[half_b["id"]].reset_index()
    out = half_b.assign(confidence=set_confidence(probed, name).to_numpy())
    out["region"] = confidence.place(out, out["confidence"], tau)
    out["likelihood_region"] = confidence.place(out, out["likelihood_conf"], tau)
    return out


def error_rates(relabelled: pd.DataFrame) -> pd.DataFrame:
    """How often a label set's region is wrong, over the answerable queries of `relabelled`
    (`relabel`): one row per truth it is checked against (`TRUTHS`) and true region ("all" for
    every answerable query), with the error rate and the number of queries."""
    answerable = relabelled[relabelled["answerable"].astype(bool)]
    rows = []
    for truth, column in TRUTHS.items():
        wrong = answerable["region"] != answerable[column]
        rows.append({"truth": truth, "region": "all", "error": float(wrong.mean()), "n": len(answerable)})
        for region, group in wrong.groupby(answerable[column]):
            rows.append({"truth": truth, "region": region, "error": float(group.mean()), "n": len(group)})
    return pd.DataFrame(rows)


def set_dir(artifacts: str | Path, seed: int, name: str) -> Path:
    """Where label set `name` of `seed` keeps its pairs, models and scores."""
    return Path(artifacts) / "label_noise" / f"seed{seed}" / name.replace("=", "")


def noisy_pairs(artifacts: str, seed: int, name: str) -> dict:
    """Label set `name`'s pairs for `seed`: half B relabelled (`relabel`), then paired from the
    IDK-IT model's saved samples (`protocol.save_pairs`), saved to the set's folder with its
    labelling. Returns the relabelled half B (`labels`), the pairs without images (`pairs`) and
    whether the labels are chapter 2's (`chapter_two`). A job for `parallel.run`."""
    home = protocol.seed_dir(artifacts, seed)
    inputs = {"labels": home / "labels.parquet", "boundary": home / "boundary.parquet",
              "samples": home / protocol.POLICY_SAMPLES}
    made_from = recipe(job="relabelled pairs", label_set=name, seed=seed,
                       world=recipe_of(protocol.world_dir(artifacts, seed)),
                       **{key: recipe_of(path) for key, path in inputs.items()})
    return reuse(set_dir(artifacts, seed, name) / "preferences", made_from,
                 lambda: _noisy_pairs(artifacts, seed, name, inputs))


def _noisy_pairs(artifacts: str, seed: int, name: str, inputs: Mapping[str, Path]) -> dict:
    home = protocol.seed_dir(artifacts, seed)
    labelling = idk_data.load_labelling(home / "idk_it")
    labels = pd.read_parquet(require(inputs["labels"], "notebook 02 (data generation)"))
    boundary = pd.read_parquet(require(inputs["boundary"], "notebook 01 (boundary definition)"))
    samples = pd.read_parquet(require(inputs["samples"], "notebook 03 (training)"))
    relabelled = relabel(labels, boundary, name, labelling["tau"])
    table = relabelled.merge(samples, on="id", validate="one_to_one")
    probe = world.load_split(protocol.world_dir(artifacts, seed), "probe")
    pairs = protocol.save_pairs(table, {**labelling, "label_set": name}, probe,
                                set_dir(artifacts, seed, name) / "preferences", seed)
    truth = dict(zip(relabelled["id"], relabelled["likelihood_region"]))
    return {"labels": relabelled, "chapter_two": is_chapter_two(relabelled, labels),
            "pairs": pairs.assign(likelihood_region=pairs["id"].map(truth))}


def is_chapter_two(relabelled: pd.DataFrame, labels: pd.DataFrame) -> bool:
    """Whether a label set gives half B exactly chapter 2's labels (then its point is the main
    table's, and nothing is trained again)."""
    half_b = labels[labels["half"] == "B"].set_index("id").loc[relabelled["id"]]
    return bool((half_b["region"].to_numpy() == relabelled["region"].to_numpy()).all()
                and np.allclose(half_b["confidence"].to_numpy(), relabelled["confidence"].to_numpy()))


def train_and_score(artifacts: str, seed: int, name: str, method: str, chosen: Mapping) -> pd.DataFrame:
    """Train `method` on label set `name`'s pairs for `seed`, from the seed's IDK-IT model with
    chapter 3's chosen settings to its chosen step, and score it on both test splits. A job
    for `parallel.run`."""
    home, world_path = protocol.seed_dir(artifacts, seed), protocol.world_dir(artifacts, seed)
    folder = set_dir(artifacts, seed, name)
    model = folder / REGISTRY[method].key
    settings = {**chosen[method], "seed": seed}
    protocol.train_method(method, settings, str(home), str(protocol.model_dir(home, IDKIT)), str(model),
                          str(world_path), stop_at=settings["stop_at"], data=str(folder / "preferences"))
    splits = {split: world.load_split(world_path, split) for split in evaluation.TEST_SPLITS}
    return protocol.saved_greedy_scores(folder / f"scores_{REGISTRY[method].key}.parquet", model, world_path,
                                        splits, method=method).assign(seed=seed)


def pair_weights(pairs: pd.DataFrame, tau: float, knobs: Mapping) -> pd.Series:
    """Each pair's CA-DPO weight under chapter 3's chosen `knobs` (ca_signal; the weight form,
    whatever form was chosen, so that the weights read as "how much a pair counts"), with the
    mean weight of its set 1, as training gives it."""
    certainty = dpo.pair_certainty(pairs["confidence"].tolist(), pairs["propensity"].tolist(), tau, knobs["ca_signal"])
    weights, _ = dpo.pair_terms(certainty, "weight")
    return pd.Series(weights.numpy(), index=pairs.index)


def weights_by_label(pairs: pd.DataFrame) -> pd.DataFrame:
    """The mean CA-DPO weight of correctly and wrongly labelled pairs, against each truth of
    `TRUTHS`, over the pairs of answerable queries (`pairs` has `weight`, `region` and the
    truths' columns; any grouping columns such as label_set and seed are kept)."""
    keys = [c for c in ("label_set", "seed") if c in pairs]
    answerable = pairs[pairs["answerable"].astype(bool)]
    frames = []
    for truth, column in TRUTHS.items():
        labelled = np.where(answerable["region"] == answerable[column], "correct", "wrong")
        grouped = answerable.assign(truth=truth, label=labelled).groupby([*keys, "truth", "label"])["weight"]
        frames.append(grouped.agg(weight="mean", pairs="size").reset_index())
    return pd.concat(frames, ignore_index=True)


def run(n_values: Sequence[int], artifacts: str, seeds: Sequence[int], chosen: Mapping, scored: pd.DataFrame,
        workers: int) -> dict[str, pd.DataFrame]:
    """The whole study (see the module docstring) on every seed: returns `errors` (each set's
    error rates per seed, `error_rates`), `runs` (each trained model's metrics per seed and
    split, `evaluation.per_run` keyed by label_set too) and `pairs` (every pair of every set and
    seed with its CA-DPO weight). `scored` holds the main table's scored responses (the point of
    a set whose labels are chapter 2's)."""
    if not n_values:  # no study asked for: the frames' columns, and no rows
        return {"errors": pd.DataFrame(columns=["truth", "region", "error", "n", "label_set", "seed", "chapter_two"]),
                "runs": pd.DataFrame(columns=["label_set", "method", "seed", "split", *COMPARED]),
                "pairs": pd.DataFrame(columns=["label_set", "seed", "answerable", "region", *TRUTHS.values(),
                                               "weight"])}
    jobs = [dict(artifacts=artifacts, seed=s, name=name) for s in seeds for name in label_sets(n_values)]
    taus = {s: idk_data.load_labelling(protocol.seed_dir(artifacts, s) / "idk_it")["tau"] for s in seeds}
    errors, pairs, main_points, train_jobs = [], [], [], []
    for job, built in zip(jobs, parallel.run(noisy_pairs, jobs, workers)):
        where = dict(label_set=job["name"], seed=job["seed"])
        errors.append(error_rates(built["labels"]).assign(**where, chapter_two=built["chapter_two"]))
        weights = pair_weights(built["pairs"], taus[job["seed"]], chosen[INBOL])
        pairs.append(built["pairs"].assign(**where, weight=weights))
        if built["chapter_two"]:
            main_points.append(scored[(scored["seed"] == job["seed"]) & scored["method"].isin(METHODS)]
                               .assign(label_set=job["name"]))
        else:
            train_jobs += [dict(job, method=m, chosen=chosen) for m in METHODS]
    trained = parallel.run(train_and_score, train_jobs, workers)
    responses = pd.concat(main_points + [frame.assign(label_set=job["name"])
                                         for job, frame in zip(train_jobs, trained)], ignore_index=True)
    return {"errors": pd.concat(errors, ignore_index=True),
            "runs": evaluation.per_run(responses, keys=("label_set", "method", "seed", "split")),
            "pairs": pd.concat(pairs, ignore_index=True)}


CURVE_COLUMNS = ["label_set", "split", "metric", "error", "error_vs_truth", "diff", "low", "high", "verdict", "n"]


def curve(errors: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """CA-DPO minus vanilla DPO on each metric of `COMPARED`, per label set and split: the
    seed-paired difference, its 95% interval and verdict (`evaluation.compare`), beside
    the set's error rate (mean over seeds, answerable queries) against the exact-likelihood label
    (`error`: the probe's noise) and against the world's ground truth (`error_vs_truth`)."""
    overall = errors[errors["region"] == "all"].groupby(["label_set", "truth"])["error"].mean()
    frames = [evaluation.compare(group, INBOL, [DPO], metric)
              .assign(label_set=name, error=overall[name, "likelihood label"],
                      error_vs_truth=overall[name, "ground truth"])
              for name, group in runs.groupby("label_set", sort=False) for metric in COMPARED]
    table = pd.concat(frames, ignore_index=True)[CURVE_COLUMNS] if frames else pd.DataFrame(columns=CURVE_COLUMNS)
    return table.sort_values(["split", "metric", "error"], kind="stable", ignore_index=True)


def weight_gaps(weights: pd.DataFrame) -> pd.DataFrame:
    """From `weights_by_label`' per-seed frame: per label set and truth, the mean weight of
    wrongly and of correctly labelled pairs (over seeds) and the seed-paired difference, wrong
    minus correct, with its 95% interval: below 0, the CA term down-weights the mislabelled pairs.
    A seed with no mislabelled pair has no difference and is left out."""
    wide = weights.pivot_table(index=["label_set", "truth", "seed"], columns="label", values="weight")
    wide = wide.reindex(columns=["correct", "wrong"]).dropna()
    rows = []
    for (name, truth), group in wide.groupby(level=["label_set", "truth"], sort=False):
        rows.append({"label_set": name, "truth": truth, "wrong": group["wrong"].mean(),
                     "correct": group["correct"].mean(),
                     **metrics.paired_comparison(group["wrong"], group["correct"])})
    return pd.DataFrame(rows)
