"""Rerun the whole default study elsewhere and record which of its verdicts came back.

    python -m inbol_utils.tools.reruns [SLUG ...]   (no slug: every rerun; run ones read again)
    make reruns [RERUN=SLUG]

Each rerun (`inbol_utils.book.reruns.RERUNS`: other worlds, other float kernels) is a copy of
params/default.yaml with its own artifacts folder, data/rerun/<slug>, sharing the job store.
It leaves out what `replication` does not compare, the one-seed ablations and the label-noise
study (its chapter 5 runs with no label set), and its chapter 4 sets its verdicts beside
data/default's (`compare_with`). Its verdicts beside the default run's (data/default, which
`make book` makes first), with the machine, float kernels and commit, go into the record that
chapter 4 and the introduction glue, `inbol_utils/book/reruns.json`. A rerun already run is
read again, not rerun: delete its folder to run it again.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from ..artifacts import write_json
from ..book import reruns
from ..replication import verdicts
from ..runner import environment
from ..runner.parameters import PROJECT_ROOT
from .try_it import DEFAULT, measure_once, params_copy, write_params

FOLDER = PROJECT_ROOT / "data" / "rerun"
BASELINE = PROJECT_ROOT / "data" / "default"
# What replication compares is chapter 4's seed-paired verdicts; the rest of chapters 4 and 5 is left out.
LEFT_OUT = {"04_evaluation": {"ablations": [], "compare_with": "data/default"},
            "05_label_noise": {"noise_n_values": []}}


def rerun_params(slug: str) -> dict:
    """params/default.yaml with the rerun's changes, its own artifacts folder, and chapters 4
    and 5 reduced to the verdicts the record compares (`LEFT_OUT`)."""
    return params_copy(DEFAULT, f"data/rerun/{slug}", reruns.RERUNS[slug].common, LEFT_OUT)


def params_file(slug: str) -> Path:
    """Write the rerun's params copy (`rerun_params`) into FOLDER/params."""
    return write_params(rerun_params(slug), FOLDER / "params" / f"{slug}.yaml")


def entry(slug: str, measured: dict) -> dict:
    """The record's entry: the rerun's verdicts beside the baseline's, and where its chapter 4 ran."""
    facts = environment.read(FOLDER / slug)["04_evaluation"]
    return reruns.entry(verdicts(BASELINE, FOLDER / slug), reruns.RERUNS[slug].about, measured["commit"],
                        f"{facts['cpu']}, {facts['cores']} cores", facts["float_kernels"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.tools.reruns", description=__doc__.split("\n")[0])
    parser.add_argument("slugs", nargs="*", metavar="SLUG",
                        help=f"reruns to run or read again: {', '.join(reruns.RERUNS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [slug for slug in args.slugs if slug not in reruns.RERUNS]
    if unknown:
        sys.exit(f"unknown rerun(s) {', '.join(unknown)}; the reruns are {', '.join(reruns.RERUNS)}")
    if not (BASELINE / "results" / "comparisons.csv").is_file():
        sys.exit("the default run is missing (data/default/results/comparisons.csv): run `make book` first")
    for slug in args.slugs or list(reruns.RERUNS):
        measured = measure_once(slug, reruns.RERUNS[slug].about, FOLDER, lambda: params_file(slug), reruns.RECORD,
                                reruns.RERUNS[slug].env)
        recorded = entry(slug, measured)
        write_json(reruns.RECORD, {**reruns.record(), slug: recorded})
        print(f"{slug}: {reruns.reading(recorded)}", flush=True)


if __name__ == "__main__":
    main()
