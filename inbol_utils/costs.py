"""GPU hours of a run at other sizes, from the tokens a smaller run measured.

    python -m inbol_utils.costs data/hub_smoke/profile.json params/hub_smoke.yaml params/hub.yaml \\
        --model-params 2.2e9

The runner writes each stage's counts to <artifacts>/profile.json (`profiling.count_tokens`):
for each part of the work, the rows and tokens that went through the model in forward passes
and the tokens generated one step at a time. `estimate` carries each count to the target
parameters by the ratio of the rows that part processes there and in the measured run (`ROWS`:
the dominant terms of each notebook's loops, upper bounds where a chosen checkpoint can stop
early), then prices it on a GPU (`Throughput`):
  training     6 N FLOPs a token (forward and backward) in notebook 00; 8 N in notebooks 03 and
               04, whose preference stages also run the frozen reference (an upper bound for
               their SFT steps);
  forward      2 N FLOPs a token (prompts, teacher-forced answers);
  decoded      at a decoding rate in tokens a second: one step a token is bound by memory
               traffic, not by FLOPs,
with N the target model's parameters and a FLOP rate `mfu` times the GPU's peak. Measured on a
tiny model of the target's architecture (`architectures`), the rows have the target's chat
template and image tokens; `row_factor` stands for what its real tokenizer adds (the template's
newlines, punctuation as tokens of its own).
"""
from __future__ import annotations

import argparse
import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import papermill

from .pipeline import load_params
from .profiling import DECODED, ROWS

STAGES = ("00_world_and_base_model", "01_boundary_definition", "02_data_generation", "03_training",
          "04_evaluation")
# Notebook 04's ablations: (variants, of which relabel the probe and retrain IDK-IT and its pairs).
ABLATION_VARIANTS = {"pairs": lambda p: (1, 0), "anchor": lambda p: (1, 0),
                     "ca_signal": lambda p: (len({"label", "policy"} - {p["ca_signal"]}), 0),
                     "ca_mode": lambda p: (1, 0), "tau": lambda p: (len(p["tau_values"]),) * 2,
                     "signal": lambda p: (len(p["signal_values"]),) * 2, "sources": lambda p: (2, 2)}


def _ablations(p: dict) -> tuple[int, int]:
    counts = [ABLATION_VARIANTS[name](p) for name in p["ablations"]]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _seeds(p: dict) -> int:
    return len(p["seeds"])


def _scored(p: dict) -> int:
    return p["n_test"] + p["n_ood"]


def _pref_candidates(p: dict) -> int:
    """DPO and CA-DPO over the (lr, beta) grid, two rows a pair, and the control over lr, one."""
    return 2 * 2 * len(p["pref_lr_values"]) * len(p["beta_values"]) + len(p["pref_lr_values"])


# (stage, part) -> rows through the model, as a function of the run's parameters; for sampling,
# also the samples drawn (the decoded rows).
ROWS_OF: dict[tuple[str, str], Callable[[dict], float]] = {
    (STAGES[0], "training"): lambda p: _seeds(p) * p["base_steps"] * p["batch_size"],
    (STAGES[0], "greedy answers"): lambda p: _seeds(p) * (
        math.ceil(p["base_steps"] / p["probe_every"]) * min(300, p["n_validation"]) + p["n_test"]),
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
    (STAGES[4], "training"): lambda p: (_ablations(p)[0] * 2 * p["pref_steps"] * p["pref_batch_size"]
                                        + _ablations(p)[1] * p["idk_steps"] * p["idk_batch_size"]),
    (STAGES[4], "greedy answers"): lambda p: (5 * _seeds(p) + _ablations(p)[0]) * _scored(p),
    (STAGES[4], "sampling"): lambda p: _seeds(p) * _scored(p) + _ablations(p)[1] * p["n_probe"] / 2,
    (STAGES[4], "likelihoods"): lambda p: _seeds(p) * _scored(p),
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
    result = {}
    for stage in load_params(params_path)["stages"]:
        defaults = {name: ast.literal_eval(spec["default"])
                    for name, spec in papermill.inspect_notebook(str(stage["notebook"])).items()}
        result[stage["stem"]] = {**defaults, **stage["parameters"]}
    return result


def namespace(parameters_by_stage: dict[str, dict], stage: str) -> dict:
    """What a stage's row formulas read: every stage's parameters (the world's sizes come from
    notebook 00, the grids from 03), the stage's own first (`batch_size` is the base model's in
    00 and the probe's in 01)."""
    merged = {}
    for values in parameters_by_stage.values():
        merged.update(values)
    return {**merged, **parameters_by_stage.get(stage, {})}


def measured(profile_path: str | Path) -> pd.DataFrame:
    """One row per (stage, part) of a run's profile: rows, tokens and decoded tokens."""
    stages = json.loads(Path(profile_path).read_text())["stages"]
    records = []
    for stage, profile in stages.items():
        counts = profile.get("parts_tokens", {})
        for part in {key.removesuffix(DECODED).removesuffix(ROWS) for key in counts}:
            records.append({"stage": stage, "part": part, "rows": counts.get(part + ROWS, 0),
                            "tokens": counts.get(part, 0), "decoded": counts.get(part + DECODED, 0)})
    if not records:
        raise ValueError(f"{profile_path} holds no token counts: run the pipeline again with this "
                         f"version of inbol_utils (the runner records them per stage).")
    return pd.DataFrame(records).sort_values(["stage", "part"], ignore_index=True)


def _formula(table: dict, params: dict[str, dict], key: tuple[str, str]) -> float:
    return table[key](namespace(params, key[0])) if key in table else math.nan


def predicted_rows(frame: pd.DataFrame, params_path: str | Path) -> pd.DataFrame:
    """`frame` (stage, part) with the rows and samples `ROWS_OF` and `SAMPLES_OF` give for the
    parameter file's run (nan where a part has no formula)."""
    params = parameters(params_path)
    keys = list(zip(frame["stage"], frame["part"]))
    return frame.assign(rows_formula=[_formula(ROWS_OF, params, k) for k in keys],
                        samples_formula=[_formula(SAMPLES_OF, params, k) for k in keys])


@dataclass(frozen=True)
class Throughput:
    """What one GPU does, stated, not measured here (no GPU was lent to this study): an H100 or
    H200 SXM (989 TFLOP/s dense bf16), a quarter of it reached by the Trainer's steps and
    teacher-forced passes on rows of a few dozen tokens, and transformers' `generate` decoding
    batches of 64 prompts of a 2B model at 2,000 tokens a second."""

    peak_tflops: float = 989.0
    mfu: float = 0.25
    decode_tokens_per_s: float = 2000.0


def estimate(profile_path: str | Path, measured_params: str | Path, target_params: str | Path,
             model_params: float, row_factor: float = 1.0,
             throughput: Throughput = Throughput()) -> pd.DataFrame:
    """GPU hours per (stage, part) of the run `target_params` describes on a model of
    `model_params` parameters, from the counts of the run `measured_params` described (its
    profile at `profile_path`). Parts without a row formula keep their measured counts."""
    frame = measured(profile_path)
    source, target = parameters(measured_params), parameters(target_params)
    keys = list(zip(frame["stage"], frame["part"]))
    # Sampling: a prompt whose cache is not shared goes through the model once per sample, so
    # its tokens scale with the samples (an upper bound where the cache is shared).
    table = [SAMPLES_OF if k in SAMPLES_OF else ROWS_OF for k in keys]
    sample_scale = pd.Series([_formula(t, target, k) / _formula(t, source, k) if k in t else 1.0
                              for t, k in zip(table, keys)])
    frame["tokens_target"] = frame["tokens"] * sample_scale * row_factor
    frame["decoded_target"] = frame["decoded"] * sample_scale
    per_token = [(6 if stage == STAGES[0] else 8) if part == "training" else 2 for stage, part in keys]
    flops = frame["tokens_target"] * per_token * model_params
    seconds = (flops / (throughput.peak_tflops * 1e12 * throughput.mfu)
               + frame["decoded_target"] / throughput.decode_tokens_per_s)
    return frame.assign(gpu_hours=seconds / 3600)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.costs", description=__doc__.split("\n")[0])
    parser.add_argument("profile", help="profile.json of the measured run (its artifacts folder)")
    parser.add_argument("measured_params", help="the parameter file the measured run used")
    parser.add_argument("target_params", help="the parameter file to estimate, e.g. params/hub.yaml")
    parser.add_argument("--model-params", type=float, required=True, help="the target model's parameters")
    parser.add_argument("--row-factor", type=float, default=1.0,
                        help="the target tokenizer's tokens per measured token (a word-level count: 1.3 for Qwen2-VL)")
    parser.add_argument("--peak-tflops", type=float, default=Throughput.peak_tflops)
    parser.add_argument("--mfu", type=float, default=Throughput.mfu)
    parser.add_argument("--decode-tokens-per-s", type=float, default=Throughput.decode_tokens_per_s)
    args = parser.parse_args(argv)
    table = estimate(args.profile, args.measured_params, args.target_params, args.model_params, args.row_factor,
                     Throughput(args.peak_tflops, args.mfu, args.decode_tokens_per_s))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round({"gpu_hours": 2, "tokens_target": 0, "decoded_target": 0}).to_string(index=False))
        print(table.groupby("stage")["gpu_hours"].sum().round(2).to_string())
    print(f"total: {table['gpu_hours'].sum():.1f} GPU hours")


if __name__ == "__main__":
    main()
