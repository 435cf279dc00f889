"""The fair-test protocol: whole-replicate seeds, on-policy pairs, equal tuning on validation.

A seed is a whole replicate: its own world (the benchmark: on the generated world, world s for
seed s unless `world_seed` fixes one for every seed; a real source's data is given, so every seed
gets the same), base model, probe, labels, training data and trained models, all under
<artifacts>/seed<s>/:

  world/               notebook 00: the five splits (`world`, `sources`)
  base_model/          notebook 00
  boundary.parquet     notebook 01: the base model's probe of the whole probe split
  labels.parquet       notebook 02: every probe query, its label (region, confidence) and half
  idk_it/              notebook 02: the IDK-IT set, from half A
  preferences_base/    notebook 02: pairs from the base model's samples on half B (off-policy:
                       the ablation that stands for how preference data is often built)
  preferences/         notebook 03: pairs from this seed's IDK-IT model's samples on half B
  policy_samples.parquet  notebook 03: those samples (`label_noise` pairs them under other labels)
  models/<key>/        notebook 03: one folder per trained method (`methods.REGISTRY`)
  scores/<key>.parquet notebook 04: every method's scored responses on the test splits

Every job here records what it was made from (`reuse`): run again with the same ingredients, in
this artifacts folder or any other, it is answered from the job store, so a rerun after changing
one parameter pays only for the jobs that depend on it. The folders above are links into the
store.

Every trained method gets the same tuning: a small grid on the first seed, each candidate
scored on the validation split every few steps, the best (settings, checkpoint) kept, then the
same settings trained to the same step for every other seed. The test splits are not read here.
"""
from __future__ import annotations

import functools
import itertools
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from . import (answers, base_targets, confidence, dpo, evaluation, idk_data, modeling, recipes, sources, training,
               vision, world)
from .runner import parallel
from .artifacts import atomic_file, require
from .generation import generate_answers
from .methods import ABSTAIN, BASE, IDKIT, REGISTRY
from .runner.reuse import link, recipe, recipe_of, reuse


def seed_dir(artifacts: str | Path, seed: int) -> Path:
    return Path(artifacts) / f"seed{seed}"


def model_dir(home: Path, method: str) -> Path:
    """Where a method's model lives in a seed's folder (the registry's `model`)."""
    return Path(home) / REGISTRY[method].model


def world_dir(artifacts: str | Path, seed: int) -> Path:
    """The seed's world: the splits everything of this replicate is trained and measured on."""
    return seed_dir(artifacts, seed) / "world"


def world_of(config: world.WorldConfig, seed: int, world_seed: int | None, source: str = "generated"
             ) -> world.WorldConfig:
    """The replicate's world: world `seed` on the generated world, so that the spread over
    seeds covers the benchmark's draw too; world `world_seed` for every seed when it is given,
    and always on a real source, whose data is given (world 0 when none is named)."""
    fixed = world_seed if world_seed is not None else None if source == "generated" else 0
    return replace(config, seed=seed if fixed is None else fixed)


def start_model(home: Path, method: str) -> Path:
    """Where a method's training starts (the registry's `starts_from`): IDK-IT from the seed's
    base model, the rest from its IDK-IT model."""
    return model_dir(home, REGISTRY[method].starts_from)


# ---------------------------------------------------------------------------- base model and probe


def build_world(artifacts: str | Path, seed: int, config: world.WorldConfig, source: str = "generated",
                source_path: str = "") -> None:
    """Build the seed's splits of `source` (`sources`: the generated world by default, sized
    and drawn by `config`), save them to seed<s>/world with the source's record, and record
    their recipe (the same config and source always give the same splits). A job for
    `parallel.run`: one per seed."""
    made_from = recipe(job="world", config=config) if source == "generated" else \
        recipe(job="world", config=config, source=source, source_path=source_path)
    reuse(world_dir(artifacts, seed), made_from, lambda: sources.build(source, source_path, config,
                                                                        world_dir(artifacts, seed)))


def train_base_model(artifacts: str, seed: int, config: world.WorldConfig, size: modeling.ModelSize,
                     vision_steps: int, steps: int, batch_size: int, lr: float, probe_every: int,
                     more_steps: int, max_steps: int, targets: base_targets.Targets, base_model: str = "",
                     dtype: str = "float32", lora_rank: int = 0) -> dict:
    """The seed's original MLLM, trained on the answerable queries of the seed's world
    (`build_world`, from `config`) only: it never sees a refusal. Saved to seed<s>/base_model in
    `dtype`. With no `base_model`, a fresh tiny LLaVA sized by `size`, its vision tower
    pretrained then frozen (with `vision_steps` = 0 it is not pretrained and trains with the
    rest); with one (a saved folder or a hub id), that checkpoint, vision encoder frozen,
    fine-tuned (`steps` = 0: used as it is), LoRA adapters of rank `lora_rank` if > 0 (merged
    when saved).

    Training runs `steps` steps, then, while the model misses its `targets` on the validation
    split (`base_targets`; only where the source records difficulty and exposure), rounds of
    `more_steps` more, up to `max_steps` in all (`training.train_sft_until`). Returns the
    training log, the validation curve (accuracy per question type and the targets' figures),
    the targets' figures at the end with what they miss, the steps trained, and the saved
    model's scored greedy answers on the test split (chapter 0's accuracy by question type and
    exposure). A job for `parallel.run`: one per seed."""
    if dtype not in modeling.DTYPES:
        raise ValueError(f"dtype must be one of {modeling.DTYPES}, got {dtype!r}")
    if steps < 0 or (steps == 0 and not base_model):
        raise ValueError(f"base_steps must be > 0 (or 0 with a base_model to use as it is), got {steps}")
    home = seed_dir(artifacts, seed)
    start = (recipe_of(base_model) if Path(base_model).exists() else base_model) if base_model else size
    made_from = recipe(job="base model", world=recipe_of(world_dir(artifacts, seed)), source=start, seed=seed,
                       vision_steps=vision_steps, steps=steps, batch_size=batch_size, lr=lr, probe_every=probe_every,
                       more_steps=more_steps, max_steps=max_steps, targets=targets.as_dict(), dtype=dtype,
                       lora_rank=lora_rank)
    return reuse(home / "base_model", made_from, lambda: _train_base_model(
        artifacts, seed, config, size, vision_steps, steps, batch_size, lr, probe_every, more_steps, max_steps,
        targets, base_model, dtype, lora_rank))


def _train_base_model(artifacts: str, seed: int, config: world.WorldConfig, size: modeling.ModelSize,
                      vision_steps: int, steps: int, batch_size: int, lr: float, probe_every: int, more_steps: int,
                      max_steps: int, targets: base_targets.Targets, base_model: str, dtype: str,
                      lora_rank: int) -> dict:
    world_path = world_dir(artifacts, seed)
    splits = {name: world.load_split(world_path, name) for name in ("base_train", "validation")}
    if base_model:
        model, processor = modeling.load(base_model, dtype=dtype)
        modeling.freeze_vision(model)
        vision_accuracy = []  # a checkpoint's vision encoder arrives pretrained
    else:
        words = set(sources.read_info(world_path)["words"])
        processor = modeling.build_processor(words | answers.refusal_words(), size)
        model = modeling.build_model(processor, size, seed=seed)
        task = (sources.vision_task(world_path, config, seed, vision_steps * vision.BATCH_SIZE)
                if vision_steps else None)
        if vision_steps and task is None:
            raise ValueError("this data source has no image labels to pretrain the vision tower on: set "
                             "vision_steps to 0 (the tower then trains end to end with the model)")
        vision_accuracy = vision.pretrain_vision_tower(model, processor, task, vision_steps, seed=seed,
                                                       progress=False) if vision_steps else []
        model.to(modeling.torch_dtype(dtype))
    checked = sources.read_info(world_path)["intrinsic_truth"]  # only the generated world records the targets' rows
    probe = _base_probe(processor, splits["validation"], config, seed, checked)
    home = seed_dir(artifacts, seed)
    if steps:
        model = recipes.lora(model, lora_rank) if lora_rank else model
        # Each query's first gold answer is its target (`map` took 3 s: it decodes every image).
        targets_rows = [answers[0] for answers in splits["base_train"]["answers"][:]]
        rows = splits["base_train"].add_column("response", targets_rows)

        def arguments(round_steps: int, round_: int):  # a new data order each round
            return training.training_arguments(str(home / "runs" / "base"), round_steps, batch_size, lr,
                                               seed + 10_000 * round_, disable_tqdm=True)

        log, curve = training.train_sft_until(
            model, processor, rows, arguments, probe, probe_every,
            done=lambda found: not base_targets.misses(_target_figures(found), targets),
            first_steps=steps, more_steps=more_steps, max_steps=max(max_steps, steps))
        model = model.merge_and_unload() if lora_rank else model
    else:
        log = pd.DataFrame(columns=["step", "loss"])
        curve = pd.DataFrame([{"step": 0, "round": 0, **probe(model)}])
    modeling.save(model, processor, home / "base_model")
    saved, saved_processor = modeling.load(home / "base_model")  # the model every later stage reads
    test = evaluation.predict(saved, saved_processor, world.load_split(world_path, "test"), desc=None)
    found = _target_figures(curve.iloc[-1].to_dict())
    return {"seed": seed, "world_seed": config.seed, "frequent_exposure": config.frequent_exposure, "log": log,
            "curve": curve, "vision_accuracy": vision_accuracy, "steps": int(curve["step"].iloc[-1]), "targets": found,
            "misses": base_targets.misses(found, targets) if checked else [], "test": test.assign(seed=seed)}


TARGET_PREFIX = "target: "  # the validation curve's columns that hold the targets' figures


def _base_probe(processor, validation, config: world.WorldConfig, seed: int, checked: bool):
    """A function model -> its validation accuracy per question type (the curve chapter 0
    plots: 300 answerable queries) and, where the source records them, the targets' figures
    (every answerable validation query, so that the check is as sure as the split allows)."""
    frame = world.split_frame(validation)
    answerable = np.flatnonzero(frame["answerable"].to_numpy())
    scored = evaluation.scorer(processor, validation.select(answerable))
    curve_rows = np.random.default_rng(seed).permutation(len(answerable))[:300]

    def probe(model) -> dict[str, float]:
        found = scored(model)
        per_type = evaluation.share_by(found.iloc[curve_rows], "qtype")
        checks = base_targets.figures(found, config.frequent_exposure) if checked else {}
        return {**per_type.to_dict(), **{TARGET_PREFIX + k: v for k, v in checks.items()}}

    return probe


def _target_figures(probed: Mapping) -> dict[str, float]:
    return {k.removeprefix(TARGET_PREFIX): float(v) for k, v in probed.items() if k.startswith(TARGET_PREFIX)}


def probe_seed(artifacts: str, seed: int, n_samples: int, n_values: list[int], temperature: float,
               batch_size: int) -> pd.DataFrame:
    """Probe the seed's base model on the whole probe split (`confidence.probe`, with
    max(n_values) samples) and add the sampled confidence for every N of `n_values`
    (`sampled_conf_<N>`) and for `n_samples` (`sampled_conf`, the one that labels the data);
    saved to seed<s>/boundary.parquet. It keeps the first `n_samples` samples only: the pairs and
    the label sets read the samples that label the data, on every seed alike (the N sweep's
    larger draws live on in their `sampled_conf_<N>`). A job for `parallel.run`: one per seed."""
    home = seed_dir(artifacts, seed)
    made_from = recipe(job="probe", base=recipe_of(home / "base_model"), world=recipe_of(world_dir(artifacts, seed)),
                       n_samples=n_samples, n_values=n_values, temperature=temperature, seed=seed,
                       batch_size=batch_size)  # the batches decide which random draw each sample gets
    return reuse(home / "boundary.parquet", made_from, lambda: _probe_seed(
        artifacts, seed, n_samples, n_values, temperature, batch_size))


def _probe_seed(artifacts: str, seed: int, n_samples: int, n_values: list[int], temperature: float,
                batch_size: int) -> pd.DataFrame:
    home = seed_dir(artifacts, seed)
    model, processor = modeling.load(require(home / "base_model", "notebook 00 (world and base model)"))
    probe = world.load_split(world_dir(artifacts, seed), "probe")
    table = confidence.probe(model, processor, probe, n_samples=max(n_values), temperature=temperature,
                             batch_size=batch_size, seed=seed)
    for n in n_values:
        table[f"sampled_conf_{n}"] = confidence.sampled_confidence(table, n)
    table["sampled_conf"] = table[f"sampled_conf_{n_samples}"]
    table["samples"] = table["samples"].map(lambda samples: list(samples[:n_samples]))
    saved = table.assign(answers=table["answers"].map(list))
    with atomic_file(home / "boundary.parquet", "wb") as handle:
        saved.to_parquet(handle)
    return table


# ---------------------------------------------------------------------------- data


def make_training_data(source: Path, labelling: Mapping, probe, home: Path,
                       seed: int) -> dict[str, pd.DataFrame]:
    """Label every query of the probe in source/boundary.parquet (`labelling`: tau,
    confidence_signal, region_mix), then write the seed's labels, its IDK-IT set (half A) and
    its base-sampled pairs (half B) to `home`, each with the labelling beside it. Returns the
    three frames, for the chapter's tables."""
    boundary_path = require(Path(source) / "boundary.parquet", "notebook 01 (boundary definition)")
    made_from = recipe(job="training data", boundary=recipe_of(boundary_path), labelling=labelling, seed=seed)
    return reuse(Path(home) / "labels.parquet", made_from, lambda: _make_training_data(
        pd.read_parquet(boundary_path), labelling, probe, Path(home), seed), also=("idk_it", "preferences_base"))


def _make_training_data(boundary: pd.DataFrame, labelling: Mapping, probe, home: Path,
                        seed: int) -> dict[str, pd.DataFrame]:
    table = confidence.labelled(boundary, idk_data.CONFIDENCE_SIGNALS[labelling["confidence_signal"]], labelling["tau"])
    in_a = table["id"].isin(set(world.probe_half(probe, "A")["id"]))
    table["half"] = np.where(in_a, "A", "B")
    idk_rows = idk_data.idk_instruction_rows(table[in_a], labelling["region_mix"], seed)
    base_pairs = idk_data.preference_rows(table[~in_a], labelling["region_mix"], seed)
    idk_set = idk_data.to_dataset(idk_rows, probe, idk_data.IDK_FEATURES)
    pair_set = idk_data.to_dataset(base_pairs, probe, idk_data.PREFERENCE_FEATURES)
    idk_data.save(idk_data.validate(idk_set, idk_data.IDK_FEATURES, "IDK-IT set"), home / "idk_it", labelling)
    idk_data.save(idk_data.validate(pair_set, idk_data.PREFERENCE_FEATURES, "preference set"),
                  home / "preferences_base", labelling)
    labels = table.drop(columns=["samples"])
    with atomic_file(home / "labels.parquet", "wb") as handle:
        labels.to_parquet(handle)
    return {"labels": labels, "idk": idk_rows, "base_pairs": base_pairs}


def build_pairs(home: str, model: str, world_path: str, n_samples: int, temperature: float,
                seed: int) -> pd.DataFrame:
    """Sample `model` `n_samples` times on every half-B query of this seed and turn its own
    responses into preference pairs (`idk_data.preference_rows`) under the labels of
    notebook 02. With the seed's IDK-IT model these are the on-policy pairs: the policy's own
    mistakes, on prompts it was not trained on. Written to home/preferences; returns the pairs
    (without images) with the kind of each rejected response."""
    made_from = recipe(job="pairs", model=recipe_of(model), labels=recipe_of(Path(home) / "labels.parquet"),
                       world=recipe_of(world_path), n_samples=n_samples, temperature=temperature, seed=seed)
    return reuse(Path(home) / "preferences", made_from, lambda: _build_pairs(
        Path(home), model, world_path, n_samples, temperature, seed), also=(POLICY_SAMPLES,))


# The sampling model's responses on half B, kept beside its pairs (`build_pairs`), so that pairs
# under other labels come from the very same responses (`label_noise`).
POLICY_SAMPLES = "policy_samples.parquet"


def _build_pairs(home: Path, model: str, world_path: str, n_samples: int, temperature: float,
                 seed: int) -> pd.DataFrame:
    labels = pd.read_parquet(require(home / "labels.parquet", "notebook 02 (data generation)"))
    half_b = labels[labels["half"] == "B"].reset_index(drop=True)
    probe = world.load_split(world_path, "probe")
    queries = world.select_ids(probe, half_b["id"])
    policy, processor = modeling.load(require(model, "notebook 03 (IDK-IT training)"))
    half_b["samples"] = generate_answers(policy, processor, list(queries["image"]), queries["question"],
                                         num_samples=n_samples, temperature=temperature, seed=seed)
    with atomic_file(home / POLICY_SAMPLES, "wb") as handle:
        half_b[["id"]].assign(samples=half_b["samples"].map(list)).to_parquet(handle)
    return save_pairs(half_b, idk_data.load_labelling(home / "idk_it"), probe, home / "preferences", seed)


def save_pairs(table: pd.DataFrame, labelling: Mapping, probe, folder: Path, seed: int) -> pd.DataFrame:
    """The pairs of every query of `table` (its labels and a model's `samples` on it:
    `idk_data.preference_rows`), saved to `folder` with `labelling` beside them; returns the pairs
    (without images) with the kind of each rejected response."""
    rows = idk_data.preference_rows(table, labelling["region_mix"], seed)
    pairs = idk_data.to_dataset(rows, probe, idk_data.PREFERENCE_FEATURES)
    idk_data.save(idk_data.validate(pairs, idk_data.PREFERENCE_FEATURES, "preference set"), folder, labelling)
    kinds = [answers.classify_response(r, a) for r, a in zip(rows["rejected"], rows["answers"])]
    return rows.assign(rejected_kind=kinds)


# ---------------------------------------------------------------------------- training


def train_method(method: str, settings: Mapping, home: str, start: str, out: str,
                 world_path: str, validation_every: int = 0, stop_at: int | None = None,
                 data: str | None = None) -> dict:
    """Train one method for one seed from `start` and save it to `out`.

    `settings`: lr, steps (the schedule's length), batch_size; for the preference stage also
    beta, anchor_weight, ca_mode and ca_signal. With `validation_every`, the model is scored on
    the validation split every that many steps and the best checkpoint (by Trust_1) is the one
    saved; with `stop_at`, training stops at that step of the same schedule. `data` replaces
    the seed's own training set (home/idk_it or home/preferences). Returns the training log
    and the validation curve.
    """
    data = data or str(Path(home) / REGISTRY[method].data)
    made_from = recipe(job="train", method=method, settings=settings, start=recipe_of(start),
                       data=recipe_of(data), world=recipe_of(world_path),
                       validation_every=validation_every, stop_at=stop_at)
    return reuse(out, made_from, lambda: _train_method(method, settings, start, out, world_path, validation_every,
                                                       stop_at, data))


def _train_method(method: str, settings: Mapping, start: str, out: str, world_path: str, validation_every: int,
                  stop_at: int | None, data: str) -> dict:
    stage = REGISTRY[method].stage
    probe = None
    if validation_every:
        _, processor = modeling.load(start)
        probe = evaluation.validation_probe(processor, world.load_split(world_path, "validation"))
    callback = training.ProbeCallback(probe, validation_every or settings["steps"], select_on="trust" if probe else None,
                                      stop_at=stop_at)
    run = dict(out=out, steps=settings["steps"], lr=settings["lr"], batch_size=settings["batch_size"],
               seed=settings["seed"], quiet=True)
    lora_rank = settings.get("lora_rank", 0)
    if stage == "idk_it":
        instructions = idk_data.load(data, idk_data.IDK_FEATURES, "IDK-IT set")
        log = recipes.train_idk_it(start, instructions, out, recipes.arguments(**run), lora_rank, [callback])
    elif stage == "control":
        log = recipes.train_control(start, recipes.load_pairs(data), out, recipes.arguments(**run), lora_rank,
                                    [callback])
    else:
        args = recipes.arguments(**run, config_class=dpo.CADPOConfig,
                                 **{knob: settings[knob] for knob in PREFERENCE_KNOBS})
        log = recipes.train_preferences(start, recipes.load_pairs(data, args), out, args, lora_rank, [callback])
    return {"log": log, "curve": pd.DataFrame(callback.history)}


def grid(fixed: Mapping, space: Mapping[str, list]) -> list[dict]:
    """Every combination of the values in `space`, each on top of the `fixed` settings."""
    keys = list(space)
    return [{**fixed, **dict(zip(keys, values))} for values in itertools.product(*space.values())]


# The preference stage's settings that are not the schedule's (`dpo.CADPOConfig`'s knobs).
PREFERENCE_KNOBS = ("beta", "anchor_weight", "ca_mode", "ca_signal")


def candidates(methods: list[str], fixed: Mapping, values: Mapping[str, list],
               knobs: Mapping = {}) -> dict[str, list[dict]]:
    """Each method's tuning grid, as the registry says it is trained: the `fixed` settings
    (steps, batch_size, seed), for a preference stage also its `knobs` (anchor_weight,
    ca_signal, ca_mode; a method with a fixed ca_mode, vanilla DPO, keeps its own), searched
    over `values` of the settings the method tunes (`Method.tuned`: lr, and beta for DPO and
    CA-DPO)."""
    grids = {}
    for method in methods:
        entry = REGISTRY[method]
        settings = dict(fixed)
        if entry.stage == "preferences":
            settings |= {**knobs, "ca_mode": entry.ca_mode or knobs["ca_mode"]}
        grids[method] = grid(settings, {name: values[name] for name in entry.tuned})
    return grids


def candidate_name(settings: Mapping, varied: list[str]) -> str:
    return "_".join(f"{k}{settings[k]:g}" if isinstance(settings[k], float) else f"{k}{settings[k]}"
                    for k in varied) or "default"


def tune(candidates: Mapping[str, list[dict]], home: Path, world_path: Path,
         every: Mapping[str, int], scratch: Path, workers: int) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Train every candidate of every method (in parallel), scoring each on the validation
    split along the way; keep, per method, the candidate and checkpoint with the best Trust_1
    and link home/models/<key> to that model (the store keeps one copy). Returns every
    validation score (one row per method, candidate and evaluated step, `selected` marking the
    choice) and, per method, the chosen settings with `stop_at`, the chosen step. Candidates stay
    in scratch/<key>/<name>: a rerun whose grid shares some of them trains only the new ones."""
    jobs = {}  # (method, candidate name) -> train_method's arguments
    for method, settings_list in candidates.items():
        varied = [k for k in settings_list[0] if len({str(s[k]) for s in settings_list}) > 1]
        for settings in settings_list:
            name = candidate_name(settings, varied)
            jobs[method, name] = dict(method=method, settings=settings, home=str(home),
                                      start=str(start_model(home, method)),
                                      out=str(scratch / REGISTRY[method].key / name),
                                      world_path=str(world_path), validation_every=every[method])
    results = parallel.run(train_method, list(jobs.values()), workers)
    curves = pd.concat([result["curve"].assign(method=method, candidate=name, **{
        k: v for k, v in job["settings"].items() if k in ("lr", "beta")})
        for ((method, name), job), result in zip(jobs.items(), results)], ignore_index=True)
    curves["selected"] = False
    chosen = {}
    for method in candidates:
        rows = curves[curves["method"] == method]
        best = rows.loc[rows["trust"].idxmax()]  # first maximum: the earlier step, the first candidate
        curves.loc[best.name, "selected"] = True
        job = jobs[method, best["candidate"]]
        chosen[method] = {**job["settings"], "stop_at": int(best["step"])}
        link(model_dir(home, method), job["out"])  # the chosen candidate is the method's model
        _drop_other_candidates(scratch / REGISTRY[method].key, {name for m, name in jobs if m == method})
    return curves, chosen


def _drop_other_candidates(folder: Path, names: set[str]) -> None:
    """Delete the candidates of earlier grids that this grid no longer has (and their runs)."""
    for path in folder.iterdir():
        if path.name in names or path.name == "runs":
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def replicate(chosen: Mapping[str, dict], methods: list[str], artifacts: Path, seeds: list[int],
              workers: int) -> None:
    """Train each method with its chosen settings, to its chosen step, for each of `seeds`
    (all (seed, method) jobs in one parallel batch), from the seed's own starting model."""
    jobs = []
    for method in methods:
        for s in seeds:
            home = seed_dir(artifacts, s)
            jobs.append(dict(method=method, settings={**chosen[method], "seed": s}, home=str(home),
                             start=str(start_model(home, method)), out=str(model_dir(home, method)),
                             world_path=str(world_dir(artifacts, s)), stop_at=chosen[method]["stop_at"]))
    parallel.run(train_method, jobs, workers)


# ---------------------------------------------------------------------------- scoring


def saved_scores(path: Path, made_from: str, score: Callable[[], pd.DataFrame]) -> pd.DataFrame:
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
    """`evaluation.score_splits` of the model at `model_path`, through `saved_scores`: its recipe
    is the model's and the world's, so it is scored again only when one of them changed."""
    made_from = recipe(job="greedy scores", model=recipe_of(model_path), world=recipe_of(world_path))
    return saved_scores(path, made_from, lambda: evaluation.score_splits(*load(model_path), splits, **labels))


def score_seed(artifacts: str, seed: int, methods: list[str], abstain_samples: int,
               abstain_threshold: float) -> pd.DataFrame:
    """Both baselines and every trained method of `methods` of one seed on both test splits, one
    scored row per (method, query), with `base_known` from that seed's base model; each model's
    scores saved to seed<s>/scores/<key>.parquet. A job for `parallel.run`: one per seed."""
    home = seed_dir(artifacts, seed)
    world_path = world_dir(artifacts, seed)
    splits = {name: world.load_split(world_path, name) for name in evaluation.TEST_SPLITS}
    tau = idk_data.load_labelling(home / REGISTRY[IDKIT].data)["tau"]
    base_path = model_dir(home, BASE)
    scores = home / "scores"
    load = functools.cache(modeling.load)  # the base model serves three jobs: load it once
    base_made = dict(model=recipe_of(base_path), world=recipe_of(world_path))
    frames = [saved_greedy_scores(scores / f"{REGISTRY[BASE].key}.parquet", base_path, world_path, splits, load,
                                  method=BASE),
              saved_scores(scores / f"{REGISTRY[ABSTAIN].key}.parquet",
                           recipe(job="abstention scores", n=abstain_samples, threshold=abstain_threshold,
                                  seed=seed, **base_made),
                           lambda: evaluation.score_abstention(*load(model_dir(home, ABSTAIN)), splits,
                                                              abstain_samples, abstain_threshold, seed,
                                                              method=ABSTAIN))]
    frames += [saved_greedy_scores(scores / f"{REGISTRY[method].key}.parquet", model_dir(home, method),
                                   world_path, splits, load, method=method)
               for method in methods]
    known = saved_scores(scores / "base_known.parquet", recipe(job="base knowledge", tau=tau, **base_made),
                         lambda: pd.DataFrame({"base_known": evaluation.base_knowledge(*load(base_path), splits,
                                                                                       tau)}))
    return pd.concat([f.assign(base_known=known["base_known"].to_numpy()) for f in frames],
                     ignore_index=True).assign(seed=seed)
