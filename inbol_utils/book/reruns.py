"""The study rerun whole, elsewhere: which of the default run's verdicts came back.

A verdict read from three replicates is a finding only if it survives other replicates and
other float rounding. Chapter 4 cannot rerun the study inside itself, so the reruns are run
once, like the "Try it" changes (`make reruns`, `inbol_utils.tools.reruns`), and recorded in
reruns.json: each with the commit, machine and float kernels it ran on and every seed-paired
verdict of it and of its baseline, the default run of that commit (`replication.verdicts`).
Chapter 4 and the introduction glue readings of that record.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..methods import REGISTRY
from ..metrics import VERDICTS
from .prose import glue_value, join, sentence_start
from .readings import REFERENCE_METRICS, RIVAL_NAMES

RECORD = Path(__file__).with_name("reruns.json")
LEVEL = VERDICTS[1]  # "is level with"
SPLITS = {"test": "in-domain", "ood": "out of domain"}


@dataclass(frozen=True)
class Rerun:
    """One rerun of the default study: `common` changes params/default.yaml's `common`, `env`
    is added to the runner's environment."""
    short: str  # its name in a list
    about: str  # what it changes, in words
    common: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)


# The reruns chapter 4 offers, by slug.
RERUNS = {
    "worlds": Rerun("other worlds", "three other replicates with their own worlds, seeds 3-5", {"seeds": [3, 4, 5]}),
    "kernels": Rerun("other float rounding", "torch's generic float kernels, as another CPU would round",
                     env={"ATEN_CPU_CAPABILITY": "default"}),
}


def record() -> dict[str, dict]:
    """The recorded reruns, by slug (empty before any was recorded)."""
    return json.loads(RECORD.read_text()) if RECORD.is_file() else {}


def entry(both: pd.DataFrame, about: str, commit: str, machine: str, float_kernels: str) -> dict:
    """A rerun's record: where it ran and every comparison's verdict in the baseline
    (`verdict_1`) and in the rerun (`verdict_2`), from `replication.verdicts`."""
    rows = both[["metric", "method", "rival", "split", "verdict_1", "verdict_2"]].dropna()
    return {"about": about, "commit": commit, "machine": machine, "float_kernels": float_kernels,
            "verdicts": rows.sort_values(["metric", "split", "method", "rival"], ascending=[True, False, True, True])
                            .to_dict("records")}  # in-domain first


def _name(method: str) -> str:
    """A method as the prose names it, from its name or its label (comparisons.csv has both)."""
    name = next((name for name, m in REGISTRY.items() if method in (name, m.label)), None)
    return RIVAL_NAMES.get(name, REGISTRY[name].label) if name else method


def _comparison(row: dict) -> str:
    """"InBoL against the control, out of domain"."""
    return f"{_name(row['method'])} against {_name(row['rival'])}, {SPLITS[row['split']]}"


def reading(entry: dict) -> str:
    """One rerun in words: where it ran, how many verdicts came back per metric, and each Trust
    verdict that did not (its baseline's verdict, then the rerun's)."""
    rows = pd.DataFrame(entry["verdicts"])
    rows["agree"] = rows["verdict_1"] == rows["verdict_2"]
    counts = rows.groupby("metric", sort=False)["agree"].agg(["sum", "size"])
    per_metric = join([f"{REFERENCE_METRICS[m]} {int(c['sum'])} of {int(c['size'])}"
                       for m, c in counts.loc[[m for m in REFERENCE_METRICS if m in counts.index]].iterrows()])
    moved = [f"{_comparison(r)} ({r['verdict_1']}, then {r['verdict_2']})"
             for r in rows[(rows["metric"] == "trust") & ~rows["agree"]].to_dict("records")]
    trust = f"the Trust verdicts that moved: {join(moved)}" if moved else "every Trust verdict came back"
    return (f"{sentence_start(entry['about'])}, at {entry['commit']} on {entry['machine']} "
            f"({entry['float_kernels']}): {int(rows['agree'].sum())} of {len(rows)} verdicts came back "
            f"({per_metric}); {trust}")


def _by_split(pairs: list[tuple[str, str]]) -> str:
    """("InBoL against the control", "ood") pairs as "in-domain, A and B; out of domain, C"."""
    return "; ".join(f"{where}, {join([what for what, split in pairs if split == key])}"
                     for key, where in SPLITS.items() if any(split == key for _, split in pairs))


def steady_trust(record: dict[str, dict], this_run: pd.DataFrame | None = None) -> str:
    """Which Trust verdicts gave the same answer in every recorded rerun, its baseline and
    `this_run` (this book's comparisons.csv, when it is the default study: a verdict the reruns
    share but this run does not give is no finding of it), in words: those that moved in at least
    one, and the firm ones ("beats", "trails") that held."""
    if not record:
        return "no rerun is recorded yet (make reruns records them)"
    keys = ["method", "rival", "split"]
    rows = pd.concat([pd.DataFrame(e["verdicts"]) for e in record.values()])
    rows = rows[rows["metric"] == "trust"].melt(id_vars=keys, value_vars=["verdict_1", "verdict_2"],
                                                 value_name="verdict")
    if this_run is not None:
        mine = this_run.loc[this_run["metric"] == "trust", [*keys, "verdict"]]
        shared = rows[keys].drop_duplicates().merge(mine[keys])  # the comparisons both make
        rows = pd.concat([rows.merge(shared), mine.merge(shared)])
    verdicts = rows.groupby(keys, sort=False)["verdict"].agg(set)
    moved = [(f"{_name(method)} against {_name(rival)}", split)
             for (method, rival, split), seen in verdicts.items() if len(seen) > 1]
    firm = [(f"{_name(method)} {next(iter(seen))} {_name(rival)}", split)
            for (method, rival, split), seen in verdicts.items() if len(seen) == 1 and seen != {LEVEL}]
    runs = join([RERUNS[slug].short if slug in RERUNS else slug for slug in record])
    whose, where = ("the", f"in this run and with {runs}") if this_run is not None else ("the default study's",
                                                                                        f"with {runs}")
    return (f"{len(verdicts) - len(moved)} of {whose} {len(verdicts)} Trust verdicts came back {where}"
            + (f", all but these: {_by_split(moved)}" if moved else "") + ". The firm ones among those that came "
            f"back: {_by_split(firm) if firm else 'none'}")


def glue_chapter(this_run: pd.DataFrame | None = None) -> None:
    """Glue `rerun_<slug>_reading` for every rerun chapter 4 offers (one not recorded yet says
    how to record it) and `reruns_steady_trust`, with `this_run`'s verdicts among them when it is
    a run of the default study (`steady_trust`)."""
    recorded = record()
    for slug, rerun in RERUNS.items():
        glue_value(f"rerun_{slug}_reading", reading(recorded[slug]) if slug in recorded else
                   f"{sentence_start(rerun.about)}: not recorded yet "
                   f"(make reruns RERUN={slug} runs and records it)")
    glue_value("reruns_steady_trust", steady_trust(recorded, this_run))
