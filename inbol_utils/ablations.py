"""Ablations: InBoL retrained on the first seed with one choice changed, scored like the methods.

Each ablation (`ABLATIONS`, chosen by notebook 04's `ablations`) is a set of variants of the
InBoL run of the main table, everything else as chapter 3 chose it:
  pairs      the base model's off-policy pairs (notebook 02) instead of the IDK-IT model's own
  anchor     the other side of the anchor: none (anchor_weight 0), or 1 if the chosen one is 0
  ca_signal  every other source of a pair's certainty (`dpo.CA_SIGNALS`)
  ca_mode    every other CA-DPO form; vanilla DPO of the main table is the "none" point
  tau        each threshold of `tau_values` other than the labelling's
  signal     each confidence signal of `signal_values` other than the labelling's
  sources    refusals of one boundary only (region_mix with the other region at 0)
A new labelling (tau, signal, sources) makes a new IDK-IT set, a new IDK-IT model (the chosen
IDK-IT settings) and its own on-policy pairs. Every ablation's reference point is the main
table's InBoL run of the same seed, `<setting> (InBoL)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import dpo, evaluation, protocol, world
from .runner import parallel
from .methods import DPO, IDKIT, INBOL

ABLATIONS = ("pairs", "anchor", "ca_signal", "ca_mode", "tau", "signal", "sources")


@dataclass
class Variant:
    """One ablation run of InBoL: one choice changed, the rest as chosen.

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


def check_names(names: Sequence[str]) -> None:
    """Stop on an ablation that does not exist, naming the ones that do."""
    unknown = set(names) - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown ablations {sorted(unknown)}; choose from {', '.join(ABLATIONS)}")


def variants(names: Sequence[str], inbol: Mapping, labelling: Mapping, tau_values: Sequence[float],
             signal_values: Sequence[str]) -> list[Variant]:
    """The variants of the ablations `names` (see the module docstring), given InBoL's chosen
    settings and the labelling of chapter 2; a value equal to the reference's is not rerun."""
    check_names(names)
    found = []
    if "pairs" in names:
        found.append(Variant("pairs", "base samples", pairs="base samples"))
    if "anchor" in names:
        weight = 0.0 if inbol["anchor_weight"] else 1.0
        found.append(Variant("anchor_weight", f"{weight:g}", settings={"anchor_weight": weight}))
    if "ca_signal" in names:
        found += [Variant("ca_signal", s, settings={"ca_signal": s}) for s in dpo.CA_SIGNALS
                  if s != inbol["ca_signal"]]
    if "ca_mode" in names:  # "none" is vanilla DPO, already trained and tuned for the main table
        found += [Variant("ca_mode", m, settings={"ca_mode": m}) for m in dpo.CA_MODES
                  if m not in ("none", inbol["ca_mode"])]
    if "tau" in names:
        found += [Variant("tau", f"{t:g}", labelling={**labelling, "tau": t}) for t in tau_values
                  if t != labelling["tau"]]
    if "signal" in names:
        found += [Variant("signal", s, labelling={**labelling, "confidence_signal": s}) for s in signal_values
                  if s != labelling["confidence_signal"]]
    if "sources" in names:
        mix = labelling["region_mix"]
        found += [Variant("sources", "intrinsic only", labelling={**labelling, "region_mix": {**mix, "beyond-extrinsic": 0.0}}),
                  Variant("sources", "extrinsic only", labelling={**labelling, "region_mix": {**mix, "beyond-intrinsic": 0.0}})]
    return found


def reference_settings(inbol: Mapping, labelling: Mapping) -> dict[str, str]:
    """What each ablation's reference point (the main table's InBoL) has, by `Variant.ablation`."""
    return {"pairs": "on-policy", "anchor_weight": f"{inbol['anchor_weight']:g}", "ca_signal": inbol["ca_signal"],
            "ca_mode": inbol["ca_mode"], "tau": f"{labelling['tau']:g}", "signal": labelling["confidence_signal"],
            "sources": "both"}


def run_variant(variant: Variant, artifacts: str, seed: int, chosen: dict, pair_samples: int,
                temperature: float, base_known: np.ndarray) -> pd.DataFrame:
    """Train one variant and score it on both test splits; `base_known` is the seed's column of
    the same name from `protocol.score_seed` (the rows come in the same order). A job for
    `parallel.run`."""
    home, world_path = protocol.seed_dir(artifacts, seed), protocol.world_dir(artifacts, seed)
    out = Path(artifacts) / "ablations" / variant.name
    idk_model, data = protocol.model_dir(home, IDKIT), home / "preferences"
    if variant.pairs == "base samples":
        data = home / "preferences_base"
    if variant.labelling is not None:
        probe = world.load_split(world_path, "probe")
        protocol.make_training_data(home, variant.labelling, probe, out, seed)
        idk_model = protocol.model_dir(out, IDKIT)
        idkit = chosen[IDKIT]
        protocol.train_method(IDKIT, idkit, str(out), str(protocol.start_model(home, IDKIT)),
                              str(idk_model), str(world_path), stop_at=idkit["stop_at"])
        protocol.build_pairs(str(out), str(idk_model), str(world_path), pair_samples, temperature, seed)
        data = out / "preferences"
    inbol = chosen[INBOL]
    model = out / "model"
    protocol.train_method(INBOL, {**inbol, **variant.settings}, str(home),
                          str(idk_model), str(model), str(world_path), stop_at=inbol["stop_at"],
                          data=str(data))
    splits = {name: world.load_split(world_path, name) for name in evaluation.TEST_SPLITS}
    scored = protocol.saved_greedy_scores(out / "scores.parquet", model, world_path, splits)
    return scored.assign(ablation=variant.ablation, setting=variant.setting, base_known=base_known, seed=seed)


def run_ablations(names: Sequence[str], artifacts: str, seed: int, chosen: dict, labelling: Mapping,
                  scored: pd.DataFrame, pair_samples: int, temperature: float, tau_values: Sequence[float],
                  signal_values: Sequence[str], workers: int) -> pd.DataFrame:
    """Train and score every variant of the ablations `names` on `seed` (in parallel), add each
    studied ablation's reference point from `scored` (the main table's scored responses), and
    summarise: one row of metrics per ablation, setting and split (`evaluation.per_run`)."""
    grid = variants(names, chosen[INBOL], labelling, tau_values, signal_values)
    first = scored[scored["seed"] == seed]
    if not grid:  # none asked for (params/quick.yaml): the frame's columns, and no rows
        return pd.DataFrame(columns=["ablation", "setting", "split", *evaluation.summary(first.head(1))])
    reference = first[first["method"] == INBOL]
    jobs = [dict(variant=v, artifacts=artifacts, seed=seed, chosen=chosen, pair_samples=pair_samples,
                 temperature=temperature, base_known=reference["base_known"].to_numpy()) for v in grid]
    frames = parallel.run(run_variant, jobs, workers)
    references = reference_settings(chosen[INBOL], labelling)
    studied = list(dict.fromkeys(v.ablation for v in grid))  # in the order of the variants
    frames += [reference.assign(ablation=a, setting=f"{references[a]} (InBoL)") for a in studied]
    if "ca_mode" in studied:  # the tuned vanilla DPO of the main table is the ca_mode = none point
        frames.append(first[first["method"] == DPO].assign(ablation="ca_mode", setting="none (DPO)"))
    return evaluation.per_run(pd.concat(frames, ignore_index=True), keys=("ablation", "setting", "split"))


def value(runs: pd.DataFrame, ablation: str, setting: str, metric: str, split: str = "test") -> float:
    """One metric of one ablation setting from `run_ablations`' frame; nan if it was not run."""
    row = runs[(runs["ablation"] == ablation) & (runs["setting"] == setting) & (runs["split"] == split)]
    return float(row[metric].iloc[0]) if len(row) else math.nan


def reference_run(runs: pd.DataFrame, seed: int) -> pd.Series:
    """Every ablation's reference point: the main table's InBoL run on `seed` (the ablations'),
    in-domain, one row of `evaluation.per_run`'s frame `runs`."""
    return runs[(runs["method"] == INBOL) & (runs["seed"] == seed) & (runs["split"] == "test")].iloc[0]
