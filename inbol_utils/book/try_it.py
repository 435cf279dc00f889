"""The chapters' "Try it" changes, each measured by a real run (`inbol_utils.tools.try_it`).

Every change is one params copy of the default study: its own artifacts folder, the shared job
store, one entry of `common` changed. `CHANGES` lists them with the chapters whose "Try it" box
offers them; `RECORD` keeps, per change, what its run cost and what it showed against the
default run, and the chapters glue both from it (`glue_chapter`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..runner.parameters import PROJECT_ROOT
from .prose import glue_value, glued_values, sentence_start

RECORD = Path(__file__).with_name("try_it.json")
DEFAULT_BOOK = PROJECT_ROOT / "book" / "executed" / "default"  # the default run's executed chapters


@dataclass(frozen=True)
class Change:
    """One "Try it": the `common` values it sets and the chapters whose box offers it."""

    slug: str
    chapters: tuple[str, ...]
    values: dict = field(default_factory=dict)
    shows: tuple[tuple[str, str, str], ...] = ()  # (chapter, glued name, what it is) to compare


# What a change is read by: (chapter, glued name, what it is). "interval:<key>" reads a seed-paired
# Trust difference of chapter 4 (`diff_<key>`, its interval and verdict); "spread:<name>" a mean
# with its sd over seeds (`<name>_sd`: two runs' means can agree where their seeds do not);
# "ablation:<name>" the rows of that ablation in the change's results/ablations.csv.
TRUST = ("04", "spread:inbol_test_trust", "InBoL's in-domain Trust (mean ± sd over seeds)")
HELPFUL = ("04", "inbol_test_answerable_acc", "InBoL's in-domain helpfulness")
REFUSES = ("04", "inbol_test_unanswerable_refr", "InBoL's in-domain refusal of unanswerable queries")
VS_IDKIT = ("04", "interval:inbol_vs_idkit_test", "InBoL minus IDK-IT, in-domain Trust")
VS_DPO = ("04", "interval:inbol_vs_dpo_test", "InBoL minus vanilla DPO, in-domain Trust")
VS_CONTROL = ("04", "interval:inbol_vs_control_test", "InBoL minus the control, in-domain Trust")
BASE = ("00", "base_reading", "The base models")
BEYOND = ("01", "share_beyond_intrinsic", "the percentage of the probe split labelled beyond the intrinsic boundary")
IDK_REFUSALS = ("02", "idk_refusal_share", "the percentage of refusals in the IDK-IT set")
REPLICATES = ("04", "replicate_reading", "Per replicate")
GPU_HOURS = ("06", "gpu_hours_total", "the GPU hours of the priced run")

CHANGES = (
    Change("seeds_5", ("00", "03", "04"), {"seeds": [0, 1, 2, 3, 4]}, (VS_IDKIT, VS_DPO, VS_CONTROL, REPLICATES)),
    Change("fact_scale", ("00",), {"fact_scale": 0.3}, (BASE, BEYOND, TRUST)),
    Change("max_difficulty", ("00",), {"max_difficulty": 0.3}, (BASE, IDK_REFUSALS, TRUST)),
    Change("world_seed", ("00",), {"world_seed": 0}, (VS_IDKIT, VS_DPO, VS_CONTROL, REPLICATES)),
    Change("max_base_steps", ("00",), {"max_base_steps": 2500},
           (("00", "base_steps_reading", "Base training"), ("04", "targets_caveat", "Chapter 4's caveat"), TRUST)),
    Change("base_steps", ("00",), {"base_steps": 6000}, (BASE, BEYOND, TRUST)),
    Change("n_samples", ("01",), {"n_samples": 3, "noise_n_values": [1, 2, 3]},
           (("01", "auroc_correct_sampled", "the sampled confidence's AUROC against a correct greedy answer"),
            BEYOND, TRUST)),
    Change("tau", ("01", "02"), {"tau": 0.3}, (BEYOND, IDK_REFUSALS, TRUST, HELPFUL)),
    Change("likelihood", ("01",), {"confidence_signal": "likelihood"},
           (BEYOND, ("01", "agreement_used", "the labels' agreement with the greedy answer"), TRUST)),
    Change("region_mix", ("02",), {"region_mix": {"inside": 1.0, "beyond-intrinsic": 1.0, "beyond-extrinsic": 0.0}},
           (IDK_REFUSALS, REFUSES, ("04", "inbol_test_beyond_intrinsic_refr",
                                    "its refusal of queries beyond the intrinsic boundary"), TRUST)),
    Change("ca_mode", ("03",), {"ca_mode": "margin"},
           (("03", "chosen_beta_inbol", "CA-DPO's chosen beta"), VS_DPO, ("04", "change_dpo_test", "In-domain"))),
    Change("ca_signal", ("03",), {"ca_signal": "label"},
           (("03", "ca_weight_cv", "the coefficient of variation of CA-DPO's weights"), VS_DPO,
            ("04", "change_dpo_test", "In-domain"))),
    Change("anchor", ("03",), {"anchor_weight": 0},
           (HELPFUL, REFUSES, ("04", "dpo_test_answerable_acc", "vanilla DPO's in-domain helpfulness"), TRUST)),
    Change("beta_values", ("03",), {"beta_values": [0.05, 0.1, 0.5, 1.0]},
           (("03", "chosen_beta_dpo", "vanilla DPO's chosen beta"), ("03", "chosen_beta_inbol", "CA-DPO's chosen beta"),
            TRUST)),
    Change("idk_steps", ("03",), {"idk_steps": 600},
           (("03", "chosen_steps_idkit", "IDK-IT's chosen step"), ("04", "idkit_test_trust", "IDK-IT's in-domain Trust"),
            TRUST)),
    Change("abstain", ("04",), {"abstain_threshold": 0.8},
           (("04", "abstain_test_trust", "the abstention baseline's in-domain Trust"),
            ("04", "abstain_test_answerable_acc", "its helpfulness"), TRUST)),
    Change("tau_ablation", ("04",), {"ablations": ["tau"], "tau_values": [0.2, 0.4, 0.6, 0.8]},
           (("04", "ablation:tau", "The τ ablation, in-domain (first seed)"),)),
    Change("noise_levels", ("05",), {"noise_n_values": [1, 2, 3, 4, 5, 6, 8, 10]},
           (("05", "noise_levels", "The label sets and their error"), ("05", "noise_pays", "the confidence term on Trust"))),
    Change("tokenizer_factor", ("06",), {"tokenizer_factor": 1.0},
           (("06", "target_tokens_m", "the priced run's tokens (millions)"), GPU_HOURS)),
    Change("target_seeds", ("06",), {"target_params": "data/try_it/params/hub_one_seed.yaml"},
           tuple(("06", f"gpu_hours_{stage}", f"the GPU hours of stage {stage}")
                 for stage in ("00", "01", "03", "04", "05"))
           + (GPU_HOURS,)),
    Change("mfu", ("06",), {"mfu": 0.5}, (GPU_HOURS, ("06", "largest_stage", "the largest stage"))),
)
BY_SLUG = {change.slug: change for change in CHANGES}


def chapter_values(book: Path) -> dict[str, dict[str, object]]:
    """Every chapter's glued values in an executed book folder, by chapter number ("00", "01", ...)."""
    return {path.name[:2]: glued_values(path) for path in sorted(book.glob("[0-9][0-9]_*.ipynb"))}


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.3g}"


def _spread(values: dict[str, object], name: str) -> str:
    return f"{values[name]:.3f} ± {values[f'{name}_sd']:.3f}"


def _interval(values: dict[str, object], key: str) -> str:
    return (f"{values[f'diff_{key}']:+.3f} [{values[f'low_{key}']:+.3f}, {values[f'high_{key}']:+.3f}] "
            f"({values[f'verdict_{key}']})")


def _ablation(results: Path, name: str) -> str:
    rows = pd.read_csv(results / "ablations.csv")
    rows = rows[(rows["ablation"] == name) & (rows["split"] == "test")]
    return "; ".join(f"{row.setting}: Trust {row.trust:.3f}, helpfulness {row.answerable_acc:.3f}, refusal of "
                     f"unanswerable queries {row.unanswerable_refr:.3f}" for row in rows.itertuples())


def seen(change: Change, default: dict, changed: dict, changed_results: Path) -> str:
    """What the change's run showed beside the default run it was measured against (the
    baseline), one clause per `change.shows`."""
    sentences = []
    for chapter, name, what in change.shows:
        if name.startswith("ablation:"):
            sentences.append(f"{what}: {_ablation(changed_results, name.split(':')[1])}")
            continue
        if name.startswith("interval:"):
            before, after = _interval(default[chapter], name[9:]), _interval(changed[chapter], name[9:])
        elif name.startswith("spread:"):
            before, after = _spread(default[chapter], name[7:]), _spread(changed[chapter], name[7:])
        else:
            before, after = _number(default[chapter][name]).rstrip("."), _number(changed[chapter][name]).rstrip(".")
        if before == after:
            sentences.append(f"{what}: {after} (as in the baseline)")
        elif isinstance(changed[chapter].get(name), str) and len(after) > 60:
            sentences.append(f"{what}: {after} (the baseline: {before})")
        else:
            sentences.append(f"{what}: {before} in the baseline, {after} with this change")
    return " ".join(sentence_start(sentence) + "." for sentence in sentences)


def cost(entry: dict) -> str:
    """A measured change's cost in words: the runner's seconds and the jobs it trained or scored."""
    jobs = f"{entry['new_jobs']} new jobs" if entry["new_jobs"] else "no new job"
    return f"{entry['seconds']:,.0f} s on {entry['machine']}, {entry['float_kernels']}; {jobs}"


def reading(entry: dict) -> str:
    """What a measured change showed, after where it ran: its baseline is the default run of
    that commit and machine (each box's "What you should see" says so once, above its readings)."""
    return f"(at {entry['commit']}, {entry['machine']}, {entry['float_kernels']}) {entry['seen']}"


def record() -> dict[str, dict]:
    """The measured changes, by slug (empty before any was measured)."""
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {}


# What every box's "What you should see" says first, above its readings (`reading`).
ABOUT_READINGS = ("Each reading is of the default study (params/default.yaml, on the generated world): a run of the "
                  "change beside the default run of the commit it names (its baseline), not beside this page's run. "
                  "Where the code or the float kernels have changed since, the baseline's figures differ from this "
                  "page's, so read a change as the step from its baseline to its own figure; on another profile or "
                  "source, run the change in a copy of its own params file")


def glue_chapter(chapter: str) -> None:
    """Glue `try_it_about` (`ABOUT_READINGS`), and `try_<slug>_cost` and `try_<slug>_seen` for every
    change `chapter`'s box offers; a change not measured yet says how to measure it."""
    glue_value("try_it_about", ABOUT_READINGS)
    measured = record()
    for change in CHANGES:
        if chapter in change.chapters:
            entry = measured.get(change.slug)
            missing = f"not measured yet (make try-it TRY={change.slug} runs it)"
            glue_value(f"try_{change.slug}_cost", cost(entry) if entry else missing)
            glue_value(f"try_{change.slug}_seen", reading(entry) if entry else missing)
