"""GPU hours of a run at other sizes, from the tokens a smaller run measured.

    python -m inbol_utils.book.costs data/hub_smoke/profile.json params/hub.yaml --model-params 2.2e9

The runner writes each stage's counts to <artifacts>/profile.json (`profiling.count_tokens`),
with the parameters the stage ran with: for each part of the work, the rows and tokens that went
through the model in forward passes and the tokens generated one step at a time. `estimate`
carries each count to the target parameters by the ratio of the rows that part processes there
and in the measured run (`ROWS`: the dominant terms of each notebook's loops, upper bounds where
a chosen checkpoint can stop early), then prices it on a GPU (`Throughput`):
  training     6 N FLOPs a token (forward and backward) in notebook 00; 8 N in notebooks 03-05,
               whose preference stages also run the frozen reference (an upper bound for
               their SFT steps);
  forward      2 N FLOPs a token (prompts, teacher-forced answers);
  decoded      at a decoding rate in tokens a second: one step a token is bound by memory
               traffic, not by FLOPs,
with N the target model's parameters and a FLOP rate `mfu` times the GPU's peak. `row_factor`
stands for what the target's processor adds to a row: its chat template (`template_factors`
measures it on the run's own rows, through a tiny processor of the target's architecture) and
its real tokenizer (the template's newlines, punctuation as tokens of its own), which cannot be
measured offline. Notebook 06 (chapter 6) prices params/hub.yaml from the run it closes.
"""
from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd
from PIL import Image

from .. import inputs
from ..runner.pipeline import load_params
from ..runner.profiling import DECODED, ROWS

# The stages whose work the estimate carries (the last stage, notebook 06, is the estimate).
STAGES = ("00_world_and_base_model", "01_boundary_definition", "02_data_generation", "03_training",
          "04_evaluation", "05_label_noise")
# FLOPs a token, per parameter: a training step (forward and backward) in notebook 00; one in
# notebooks 03-05, whose preference stages also run the frozen reference; a forward pass.
TRAINING_FLOPS, PREFERENCE_TRAINING_FLOPS, FORWARD_FLOPS = 6, 8, 2
# The parts of the work whose rows are prompts alone (generation reads the prompt); the other
# parts (training, likelihoods) read prompt and response.
PROMPT_PARTS = ("greedy answers", "sampling")
# Notebook 04's ablations: (variants, of which relabel the probe and retrain IDK-IT and its pairs).
ABLATION_VARIANTS = {"pairs": lambda p: (1, 0), "anchor": lambda p: (1, 0),
                     "ca_signal": lambda p: (len({"label", "policy"} - {p["ca_signal"]}), 0),
                     "ca_mode": lambda p: (1, 0), "tau": lambda p: (len(p["tau_values"]),) * 2,
                     "signal": lambda p: (len(p["signal_values"]),) * 2, "sources": lambda p: (2, 2)}


def _ablations(p: dict) -> tuple[int, int]:
    counts = [ABLATION_VARIANTS[name](p) for name in p["ablations"]]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _noise_sets(p: dict) -> int:
    """Notebook 05's label-noise sets that train models (`label_noise`): one per probe size and
    the likelihood, less the one that gives chapter 2's labels; none on a real source, which
    records no true boundary to measure labels against."""
    if not p["noise_n_values"] or p["source"] != "generated":
        return 0
    main = int(p["n_samples"] in p["noise_n_values"]) if p["confidence_signal"] == "sampled" else 1
    return len(set(p["noise_n_values"])) + 1 - main


def _seeds(p: dict) -> int:
    return len(p["seeds"])


def _noise_models(p: dict) -> int:
    """DPO and CA-DPO on every label-noise set and seed (an upper bound: a sampled set that
    draws chapter 2's labels by chance trains nothing)."""
    return 2 * _noise_sets(p) * _seeds(p)


def _scored(p: dict) -> int:
    return p["n_test"] + p["n_ood"]


# The share of a split's queries with a gold answer, 1 - world.WorldConfig.unanswerable_share
# (restated: importing the world would import datasets; tests/test_costs.py keeps them equal).
ANSWERABLE = 0.7


def _pref_candidates(p: dict) -> int:
    """DPO and CA-DPO over the (lr, beta) grid, two rows a pair, and the control over lr, one."""
    return 2 * 2 * len(p["pref_lr_values"]) * len(p["beta_values"]) + len(p["pref_lr_values"])


# (stage, part) -> rows through the model, as a function of the run's parameters; for sampling,
# also the samples drawn (the decoded rows).
ROWS_OF: dict[tuple[str, str], Callable[[dict], float]] = {
    # Base training's first schedule; a base model that misses its targets trains more rounds.
    (STAGES[0], "training"): lambda p: _seeds(p) * p["base_steps"] * p["batch_size"],
    (STAGES[0], "greedy answers"): lambda p: _seeds(p) * (  # each check scores the answerable validation queries
        math.ceil(p["base_steps"] / p["probe_every"]) * ANSWERABLE * p["n_validation"] + p["n_test"]),
    (STAGES[1], "greedy answers"): lambda p: _seeds(p) * p["n_probe"],
    (STAGES[1], "sampling"): lambda p: _seeds(p) * p["n_probe"],
    (STAGES[1], "likelihoods"): lambda p: _seeds(p) * p["n_probe"],
    (STAGES[3], "training"): lambda p: (
        (len(p["idk_lr_values"]) + _seeds(p) - 1) * p["idk_steps"] * p["idk_batch_size"]
        + (_pref_candidates(p) + 5 * (_seeds(p) - 1)) * p["pref_steps"] * p["pref_batch_size"]),
    (STAGES[3], "greedy answers"): lambda p: p["n_validation"] * (
        len(p["idk_lr_values"]) * math.ceil(p["idk_steps"] / p["idk_eval_every"])
        + (2 * len(p["pref_lr_values"]) * len(p["beta_values"]) + len(p["pref_lr_values"]))
        * math.ceil(p["pref_steps"] / p["pref_eval_every"])),
    (STAGES[3], "sampling"): lambda p: _seeds(p) * p["n_probe"] / 2,
    # The ablations' variants (first seed).
    (STAGES[4], "training"): lambda p: (_ablations(p)[0] * 2 * p["pref_steps"] * p["pref_batch_size"]
                                        + _ablations(p)[1] * p["idk_steps"] * p["idk_batch_size"]),
    (STAGES[4], "greedy answers"): lambda p: (5 * _seeds(p) + _ablations(p)[0]) * _scored(p),
    (STAGES[4], "sampling"): lambda p: _seeds(p) * _scored(p) + _ablations(p)[1] * p["n_probe"] / 2,
    # The base model's knowledge of each query, then the frontiers (`frontier.METHODS`: five models
    # a seed, two likelihoods a query: the canonical refusal and the best answer).
    (STAGES[4], "likelihoods"): lambda p: _seeds(p) * _scored(p) * (1 + 2 * 5),
    # The label-noise study's models, two rows a pair, then each one scored.
    (STAGES[5], "training"): lambda p: _noise_models(p) * 2 * p["pref_steps"] * p["pref_batch_size"],
    (STAGES[5], "greedy answers"): lambda p: _noise_models(p) * _scored(p),
}
SAMPLES_OF: dict[tuple[str, str], Callable[[dict], float]] = {
    (STAGES[1], "sampling"): lambda p: p["n_probe"] * (max(p["n_values"]) + (_seeds(p) - 1) * p["n_samples"]),
    (STAGES[3], "sampling"): lambda p: _seeds(p) * p["n_probe"] / 2 * p["pair_samples"],
    (STAGES[4], "sampling"): lambda p: (_seeds(p) * _scored(p) * p["abstain_samples"]
                                        + _ablations(p)[1] * p["n_probe"] / 2 * p["pair_samples"]),
}


def parameters(params_path: str | Path) -> dict[str, dict]:
    """Every notebook parameter of every stage of a parameter file: the notebook's default,
    overridden by the file (what the runner passes)."""
    return {stage["stem"]: stage["values"] for stage in load_params(params_path)["stages"]}


def namespace(parameters_by_stage: dict[str, dict], stage: str) -> dict:
    """What a stage's row formulas read: every stage's parameters (the world's sizes come from
    notebook 00, the grids from 03), the stage's own first (`batch_size` is the base model's in
    00 and the probe's in 01)."""
    merged = {}
    for values in parameters_by_stage.values():
        merged.update(values)
    return {**merged, **parameters_by_stage.get(stage, {})}


def _profiled_stages(profile_path: str | Path) -> dict[str, dict]:
    """The profiles of `STAGES`, every one of them: an estimate from part of a run is no estimate."""
    stages = json.loads(Path(profile_path).read_text())["stages"]
    missing = [stage for stage in STAGES if stage not in stages]
    if missing:
        raise ValueError(f"{profile_path} has no profile of {missing}: run those stages with the runner "
                         f"(python -m inbol_utils.runner.pipeline), which records each stage's counts.")
    return {stage: stages[stage] for stage in STAGES}


def measured_parameters(profile_path: str | Path) -> dict[str, dict]:
    """The parameters each stage of the measured run ran with, as the runner recorded them."""
    stages = _profiled_stages(profile_path)
    if not all("parameters" in profile for profile in stages.values()):
        raise ValueError(f"{profile_path} does not record the stages' parameters: run the pipeline again "
                         f"with this version of inbol_utils (the runner records them per stage).")
    return {stage: profile["parameters"] for stage, profile in stages.items()}


def measured(profile_path: str | Path) -> pd.DataFrame:
    """One row per (stage, part) of a run's profile: rows, tokens and decoded tokens, of the
    work done and of the work answered from records (a rerun's reused jobs are the study's
    work all the same)."""
    records = []
    for stage, profile in _profiled_stages(profile_path).items():
        counts = Counter(profile.get("parts_tokens", {})) + Counter(profile.get("reused_tokens", {}))
        for part in {key.removesuffix(DECODED).removesuffix(ROWS) for key in counts}:
            records.append({"stage": stage, "part": part, "rows": counts.get(part + ROWS, 0),
                            "tokens": counts.get(part, 0), "decoded": counts.get(part + DECODED, 0)})
    if not records:
        raise ValueError(f"{profile_path} holds no token counts: run the pipeline again with this "
                         f"version of inbol_utils (the runner records them per stage).")
    return pd.DataFrame(records).sort_values(["stage", "part"], ignore_index=True)


def _formula(table: dict, params: dict[str, dict], key: tuple[str, str]) -> float:
    return table[key](namespace(params, key[0])) if key in table else math.nan


def row_tokens(processor, images: Sequence[Image.Image], questions: Sequence[str],
               responses: Sequence[str]) -> dict[str, int]:
    """The tokens the rows take through `processor`, as the study's code builds them
    (`inputs`): the prompts alone, and prompt with response (a training row)."""
    prompts = [inputs.prompt_text(processor, q) for q in questions]
    rows = [p + inputs.response_text(processor, r) for p, r in zip(prompts, responses)]
    return {kind: int(processor(images=list(images), text=texts, padding=True, return_tensors="pt")
                      ["attention_mask"].sum())
            for kind, texts in (("prompt", prompts), ("row", rows))}


def image_tokens(processor, image: Image.Image) -> int:
    """The tokens one image becomes in `processor`'s prompts (its image token, repeated)."""
    batch = processor(images=[image], text=[inputs.prompt_text(processor, "")], return_tensors="pt")
    return int((batch["input_ids"] == processor.image_token_id).sum())


def template_factors(measured_tokens: Mapping[str, int], target_tokens: Mapping[str, int]) -> dict[str, float]:
    """How many tokens the same rows take through the target's processor per token through the
    measured run's (both counted by `row_tokens`): its chat template, image tokens and
    (word-level) tokenizer. One factor per kind of row, "prompt" (the parts of `PROMPT_PARTS`)
    and "row" (the others)."""
    return {kind: target_tokens[kind] / measured_tokens[kind] for kind in measured_tokens}


def part_factors(factors: Mapping[str, float], tokenizer_factor: float) -> dict[str, float]:
    """`estimate`'s row factor of every part of the work: the template factor of its kind of
    row (`template_factors`) times what the target's real tokenizer adds."""
    parts = sorted({part for _, part in ROWS_OF})
    return {part: factors["prompt" if part in PROMPT_PARTS else "row"] * tokenizer_factor for part in parts}


@dataclass(frozen=True)
class Throughput:
    """What one GPU does, stated, not measured here (no GPU was lent to this study): an H100 or
    H200 SXM (989 TFLOP/s dense bf16), a quarter of it reached by the Trainer's steps and
    teacher-forced passes on rows of a few dozen tokens, and transformers' `generate` decoding
    batches of 64 prompts of a 2B model at 2,000 tokens a second."""

    peak_tflops: float = 989.0
    mfu: float = 0.25
    decode_tokens_per_s: float = 2000.0


def estimate(profile_path: str | Path, target_params: str | Path, model_params: float,
             row_factor: float | Mapping[str, float] = 1.0, throughput: Throughput = Throughput(),
             prompt_shared: tuple[bool, bool] = (False, False)) -> pd.DataFrame:
    """GPU hours per (stage, part) of the run `target_params` describes on a model of
    `model_params` parameters, from the counts of the run whose profile is at `profile_path`
    (and the parameters it records). `row_factor`: the target's tokens per measured token, one
    for every part or one per part (`part_factors`). `prompt_shared`: whether the measured run's
    sampler and the target's read a prompt once for all its samples or once per sample
    (`generation.SHARED_PROMPT_MODELS`). Parts without a row formula keep their measured counts."""
    frame = measured(profile_path)
    source, target = measured_parameters(profile_path), parameters(target_params)
    keys = list(zip(frame["stage"], frame["part"]))

    def passes(params: dict, key: tuple[str, str], shared: bool) -> float:
        """The rows that go through the model: a sampled prompt once, or once per sample."""
        return _formula(SAMPLES_OF if key in SAMPLES_OF and not shared else ROWS_OF, params, key)

    token_scale = [passes(target, k, prompt_shared[1]) / passes(source, k, prompt_shared[0]) if k in ROWS_OF
                   else 1.0 for k in keys]
    decoded_table = [SAMPLES_OF if k in SAMPLES_OF else ROWS_OF for k in keys]
    decoded_scale = [_formula(t, target, k) / _formula(t, source, k) if k in t else 1.0
                     for t, k in zip(decoded_table, keys)]
    frame["tokens_target"] = (frame["tokens"] * pd.Series(token_scale)
                              * [_factor(row_factor, part) for part in frame["part"]])
    frame["decoded_target"] = frame["decoded"] * pd.Series(decoded_scale)
    per_token = [(TRAINING_FLOPS if stage == STAGES[0] else PREFERENCE_TRAINING_FLOPS) if part == "training"
                 else FORWARD_FLOPS for stage, part in keys]
    flops = frame["tokens_target"] * per_token * model_params
    seconds = (flops / (throughput.peak_tflops * 1e12 * throughput.mfu)
               + frame["decoded_target"] / throughput.decode_tokens_per_s)
    return frame.assign(gpu_hours=seconds / 3600)


def _factor(row_factor: float | Mapping[str, float], part: str) -> float:
    if not isinstance(row_factor, Mapping):
        return row_factor
    if part not in row_factor:
        raise ValueError(f"row_factor gives no factor for the part {part!r} (it has {sorted(row_factor)}): "
                         f"give one for every part of the profile, e.g. with part_factors.")
    return row_factor[part]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.book.costs", description=__doc__.split("\n")[0])
    parser.add_argument("profile", help="profile.json of the measured run (its artifacts folder)")
    parser.add_argument("target_params", help="the parameter file to estimate, e.g. params/hub.yaml")
    parser.add_argument("--model-params", type=float, required=True, help="the target model's parameters")
    parser.add_argument("--row-factor", type=float, default=1.0,
                        help="the target processor's tokens per measured token (chapter 6 measures the template's part)")
    parser.add_argument("--peak-tflops", type=float, default=Throughput.peak_tflops)
    parser.add_argument("--mfu", type=float, default=Throughput.mfu)
    parser.add_argument("--decode-tokens-per-s", type=float, default=Throughput.decode_tokens_per_s)
    for side in ("measured", "target"):
        parser.add_argument(f"--{side}-shares-prompt", action="store_true",
                            help=f"the {side} run's sampler reads a prompt once for all its samples (LLaVA, "
                                 f"Idefics3; Qwen2-VL reads it once per sample)")
    args = parser.parse_args(argv)
    table = estimate(args.profile, args.target_params, args.model_params, args.row_factor,
                     Throughput(args.peak_tflops, args.mfu, args.decode_tokens_per_s),
                     (args.measured_shares_prompt, args.target_shares_prompt))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round({"gpu_hours": 2, "tokens_target": 0, "decoded_target": 0}).to_string(index=False))
        print(table.groupby("stage")["gpu_hours"].sum().round(2).to_string())
    print(f"total: {table['gpu_hours'].sum():.1f} GPU hours")


if __name__ == "__main__":
    main()
