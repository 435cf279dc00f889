"""Run the chapters' "Try it" changes and record what each cost and showed.

    python -m inbol_utils.tools.try_it [SLUG ...]   (no slug: every change; measured ones read again)
    python -m inbol_utils.tools.try_it --list
    make try-it [TRY=SLUG]

Each change (`inbol_utils.book.try_it.CHANGES`) runs as a reader would run it: a copy of
params/default.yaml with its own artifacts folder, data/try_it/<slug>, sharing the job store,
with the change in `common`. Its cost is the runner's wall time, seconds on this machine, and
the jobs it added to the store; what it showed is read from its results beside the default
run's (data/default, which `make book` makes first). Both go into the record the chapters glue,
`inbol_utils/book/try_it.json`, with the machine and the commit. A change already measured is
read again, not rerun: delete its folder to measure it again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from ..artifacts import write_json
from ..book import try_it
from ..runner import environment, reuse, staging
from ..runner.parameters import PROJECT_ROOT

FOLDER = PROJECT_ROOT / "data" / "try_it"
DEFAULT = PROJECT_ROOT / "params" / "default.yaml"
HUB_ONE_SEED = FOLDER / "params" / "hub_one_seed.yaml"


def params_copy(base: Path, artifacts: str, common: Mapping, stages: Mapping[str, Mapping] | None = None) -> dict:
    """The params file `base` with its own `artifacts` folder, `common` on top of its own and, per
    stage (a notebook's name), `stages`' values on top of that stage's: how the tools run the study
    beside a profile's own run (the "Try it" changes, the reruns, the world benchmark)."""
    params = yaml.safe_load(Path(base).read_text())
    return {**params, "artifacts": artifacts, "common": {**params["common"], **common},
            "stages": [{**stage, "parameters": {**stage["parameters"],
                                                **(stages or {}).get(Path(stage["notebook"]).stem, {})}}
                       for stage in params["stages"]]}


def write_params(params: dict, path: Path) -> Path:
    """Write a params copy (`params_copy`) to `path`, its folder made if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def change_params(change: try_it.Change) -> dict:
    """params/default.yaml with the change in `common` and its own artifacts folder."""
    return params_copy(DEFAULT, f"data/try_it/{change.slug}", change.values)


def params_file(change: try_it.Change) -> Path:
    """Write the change's params copy, and the params file it names when that is chapter 6's
    priced run with one seed (HUB_ONE_SEED)."""
    path = write_params(change_params(change), FOLDER / "params" / f"{change.slug}.yaml")
    if HUB_ONE_SEED.relative_to(PROJECT_ROOT).as_posix() in change.values.values():
        hub = yaml.safe_load((PROJECT_ROOT / "params" / "hub.yaml").read_text())
        HUB_ONE_SEED.write_text(yaml.safe_dump({**hub, "common": {**hub["common"], "seeds": [0]}}, sort_keys=False))
    return path


def measure(name: str, params: Path, executed: Path, env: dict[str, str] | None = None) -> dict:
    """Run `params` through the pipeline from an empty artifacts folder, its notebooks executed
    into `executed`, with `env` added to the environment; its wall time and the jobs it added.

    The runner gets a Ctrl-C too (the terminal sends it to both): it undoes its stage and stops
    its kernels, and this waits for that before stopping, `name` unmeasured."""
    artifacts = PROJECT_ROOT / yaml.safe_load(params.read_text())["artifacts"]
    for folder in (artifacts, staging.snapshot_dir(artifacts), executed):
        # an interrupted run's stages, and the snapshot it would restore
        shutil.rmtree(folder, ignore_errors=True)
    jobs_before = sum(1 for _ in reuse.store().iterdir()) if reuse.store().is_dir() else 0
    start = time.perf_counter()
    runner = subprocess.Popen([sys.executable, "-m", "inbol_utils.runner.pipeline", str(params),
                               "--executed-dir", str(executed)], cwd=PROJECT_ROOT, env={**os.environ, **(env or {})})
    try:
        status = runner.wait()
    except KeyboardInterrupt:
        runner.wait()
        sys.exit(f"{name}: stopped, not measured; the jobs it finished are in the store, so a new "
                 f"measurement of it would cost less than a reader will pay")
    if status:
        sys.exit(f"{name}: the runner failed (exit status {status}), not measured")
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 1), "new_jobs": sum(1 for _ in reuse.store().iterdir()) - jobs_before}


def commit(record: Path) -> str:
    """The commit measured, marked when the working tree had changes other than those to `record`,
    the tool's own record (written after each change, so every change after the first was marked)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            f":!{record.relative_to(PROJECT_ROOT).as_posix()}"],
                           cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + (" with changes" if dirty else "") if head.returncode == 0 else "unknown"


def measure_once(slug: str, about: str, folder: Path, params: Callable[[], Path], record: Path,
                 env: dict[str, str] | None = None) -> dict:
    """The measurement kept in folder/<slug>/measured.json: read again when it is there; else the
    run (`measure`) of the params file `params()` writes, with the commit it ran (`commit`, the
    tool's own `record` aside), kept there first. Shared by the "Try it" changes and the reruns."""
    done = folder / slug / "measured.json"
    if done.is_file():
        shown = done.parent.relative_to(PROJECT_ROOT) if done.parent.is_relative_to(PROJECT_ROOT) else done.parent
        print(f"{slug}: measured, read again (delete {shown} to run it again)")
    else:
        print(f"{slug}: running {about}", flush=True)
        measured_at = commit(record)  # before the run: what it ran
        write_json(done, {**measure(slug, params(), folder / "executed" / slug, env), "commit": measured_at})
    return json.loads(done.read_text())


def record_entry(change: try_it.Change, measured: dict, default: dict) -> dict:
    """The record's entry for a measured change: its cost, the machine and what it showed beside
    the `default` run's glued values (`try_it.chapter_values`)."""
    changed = try_it.chapter_values(FOLDER / "executed" / change.slug)
    facts = environment.facts()
    return {**measured, "values": change.values, "machine": f"{facts['cpu']}, {facts['cores']} cores",
            "float_kernels": facts["float_kernels"],
            "seen": try_it.seen(change, default, changed, FOLDER / change.slug / "results")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.tools.try_it", description=__doc__.split("\n")[0])
    parser.add_argument("slugs", nargs="*", metavar="SLUG", help="changes to run or read again (default: all)")
    parser.add_argument("--list", action="store_true", help="list the changes and stop")
    args = parser.parse_args(argv)
    if args.list:
        for change in try_it.CHANGES:
            print(f"{change.slug:18} chapters {', '.join(change.chapters):12} {change.values}")
        return
    unknown = [slug for slug in args.slugs if slug not in try_it.BY_SLUG]
    if unknown:
        sys.exit(f"unknown change(s) {', '.join(unknown)}; `--list` shows them")
    if not (try_it.DEFAULT_BOOK / "04_evaluation.ipynb").is_file():
        sys.exit("the default run is missing (book/executed/default): run `make book` first")
    default = try_it.chapter_values(try_it.DEFAULT_BOOK)
    for slug in args.slugs or [c.slug for c in try_it.CHANGES]:
        change = try_it.BY_SLUG[slug]
        measured = measure_once(slug, str(change.values), FOLDER, lambda: params_file(change), try_it.RECORD)
        entry = record_entry(change, measured, default)
        write_json(try_it.RECORD, {**try_it.record(), slug: entry})
        print(f"{slug}: {try_it.cost(entry)}\n  {try_it.reading(entry)}", flush=True)


if __name__ == "__main__":
    main()
