"""What a base model must know before the study can draw its boundaries, and the check of it.

The study's refusal methods are only meaningful on a base model that is *capable and limited*:
it must see easy scenes and remember its most often shown facts, so that what it cannot answer
is set by the world's boundaries (hard scenes, rare or unseen facts, unanswerable inputs) and
not by an undertrained model. The targets below say "capable" in numbers; base training checks
them on the validation split (`protocol.train_base_model`), and a base model that misses them
is flagged, never passed on silently.

On a real source (easy-VQA, a datasets folder) no scene difficulty or fact exposure is
recorded (`sources.read_info(...)["intrinsic_truth"]` is false), so there is nothing to check.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from .world import DIFFICULTY_BANDS

EASY = DIFFICULTY_BANDS["easy"]  # difficulty at or below which a scene counts as easy


@dataclass(frozen=True)
class Targets:
    """The accuracy a base model must reach, on the validation split, before it is used."""

    easy_perception: float = 0.90  # perception queries about easy scenes
    frequent_facts: float = 0.95  # knowledge queries whose fact was shown in the two top tiers

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def figures(scored: pd.DataFrame, frequent_exposure: int) -> dict[str, float]:
    """The targets' figures of a scored frame (`evaluation.score`'s columns): accuracy on easy
    perception queries and on queries about facts shown at least `frequent_exposure` times.
    Only the generated world records both."""
    correct = scored["response_type"] == "correct"
    answerable = scored["answerable"].astype(bool)
    easy = answerable & (scored["family"] == "perception") & (scored["difficulty"] <= EASY)
    frequent = answerable & (scored["family"] == "knowledge") & (scored["exposure"] >= frequent_exposure)
    return {"easy_perception": float(correct[easy].mean()), "frequent_facts": float(correct[frequent].mean())}


def misses(found: dict[str, float], targets: Targets) -> list[str]:
    """The targets `found` falls short of, each as "easy perception 87.1% < 90%" (empty: all
    met). A figure over no queries (nan) is a miss: nothing shows the model can do it."""
    wanted = targets.as_dict()
    return [f"{name.replace('_', ' ')} {100 * value:.1f}% < {100 * wanted[name]:g}%"
            for name, value in found.items() if not value >= wanted[name]]


RESULTS_FILE = "base_models.csv"  # in <artifacts>/results: one row per seed, `meets_targets` its flag


def report(trained: list[dict], checked: bool) -> pd.DataFrame:
    """One row per seed from `protocol.train_base_model`'s results: its world, the steps it
    trained, the targets' figures on validation (the check) and on the test split (as chapter 0
    describes the model), and the flag: `meets_targets`, with what it `misses`. Without a check
    (`checked` false: a real source) every seed meets its targets."""
    rows = []
    for t in trained:
        test = figures(t["test"], t["frequent_exposure"]) if checked else {}
        rows.append({"seed": t["seed"], "world": t["world_seed"], "steps": t["steps"],
                     **{f"validation_{k}": v for k, v in t["targets"].items()},
                     **{f"test_{k}": v for k, v in test.items()},
                     "meets_targets": not t["misses"], "misses": "; ".join(t["misses"])})
    return pd.DataFrame(rows)


def warning(report: pd.DataFrame, targets: Targets, cap: int) -> str | None:
    """A MyST warning naming every seed whose base model missed its targets after `cap` steps,
    and what it missed; None when every seed met them."""
    short = report[~report["meets_targets"]]
    if short.empty:
        return None
    seeds = "; ".join(f"seed {r.seed} (world {r.world}): {r.misses}" for r in short.itertuples())
    return (f":::{{warning}}\n**{len(short)} of {len(report)} base models miss their targets** "
            f"(on validation, after the cap of {cap:,} steps): {seeds}. The targets are easy perception at "
            f"least {100 * targets.easy_perception:g}% and facts of the two most often shown tiers at least "
            f"{100 * targets.frequent_facts:g}%. What such a model cannot answer is set by its own weakness, "
            "not only by the world's boundaries, so every later chapter's results on these seeds carry this "
            "caveat (`results/base_models.csv`, `meets_targets`). Raise `max_base_steps`, or see chapter 0's "
            "\"Try it\".\n:::")


def caveat(results: pd.DataFrame, checked: bool = True) -> str:
    """What chapter 4 and the introduction say beside their verdicts, from `results/base_models.csv`
    (notebook 00's `report`): nothing to add when every base model met its targets, else which
    seeds' results rest on an undertrained base model. `checked` false: a real source, where no
    target was checked (`report`), so none can be said to be met."""
    if not checked:
        return ("no accuracy target is checked on this source (chapter 0), so the verdicts rest on base models "
                "trained a fixed schedule, whatever they learned in it")
    short = results[~results["meets_targets"].astype(bool)]
    if short.empty:
        return "every base model met its accuracy targets (chapter 0), so no verdict rests on an undertrained one"
    seeds = ", ".join(f"seed {r.seed} (world {r.world})" for r in short.itertuples())
    return (f"{len(short)} of {len(results)} base models missed their accuracy targets (chapter 0: {seeds}), so the "
            "verdicts rest partly on base models whose own weakness, not only the world's boundaries, decides what "
            "they cannot answer")
