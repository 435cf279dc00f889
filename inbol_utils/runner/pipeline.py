"""The study's runner: execute the notebooks in order with papermill, skipping what is current.

    python -m inbol_utils.runner.pipeline params/default.yaml [--executed-dir book/executed]
                                                       [--force] [--only STEM ...]
                                                       [--rerun-from STAGE]

One YAML parameter file names the artifacts folder, the parameters every notebook shares, and
the stages in order:

    artifacts: data/default       # passed to every notebook as the parameter `artifacts`
    common: {seeds: [0, 1, 2]}    # passed to every notebook that declares it
    stages:
      - notebook: notebooks/00_world_and_base_model.ipynb
        parameters: {base_steps: 3000}

Relative paths inside the file (notebooks, artifacts) are read from the repository root, which
is also the working directory of every notebook; a notebook's own check (`parameters.check`)
reads them from there too, so `artifacts` means the same folder to the runner and to a notebook
opened in Jupyter, whose kernel starts in notebooks/. Each executed notebook lands in `<executed-dir>/<stem>.ipynb`,
where the book reads it; the executed dir is `book/executed/<profile>`, the profile being the
parameter file's name (params/smoke.yaml: book/executed/smoke), so that profiles never replace
each other's chapters. A notebook runs in `<artifacts>.partial/<stem>.ipynb` and moves to the
executed dir when it succeeds; a failed one stays there, outside the book.

The chapters show rounded or trimmed tables and link the full ones, `<artifacts>/results/*.csv`,
as downloads (`{download}` roles with a path relative to the chapter, `results/<name>.csv`). So
after every stage, run or skipped, the runner mirrors those files into `<executed-dir>/results/`
in one rename (`publish_results`): the book's copy is always a complete set from one state of
the artifacts, and a failed stage, which restores the artifacts, leaves the previous set. Only
the runner does this: a notebook executed by hand with papermill into the book's folder gets its
downloads the next time the runner runs on that profile (every stage skipped when current);
until then the strict book build stops at the link ("download file not readable").

Before anything runs, every stage's parameters (the notebook's defaults, then `common`, then
the stage's own) are checked against the notebook's schema (`inbol_utils.runner.parameters`), and
before each stage runs, its input artifacts. A stage changes the artifacts folder completely or
not at all (`inbol_utils.runner.staging`): if it fails, the folder is put back as it was before it
started.

One runner works on an artifacts folder at a time (`staging.held`): a second one stops, in one
line that names the first, before it touches anything (its first act would otherwise be to
undo the stage the first one is running). Ctrl-C stops a run with one line, exit status 130:
the stage that was running is undone, its kernels are stopped, and the line
says which stage that was and what the folder holds. SIGTERM (`kill`, `timeout`) does the same.

A stage is skipped when its fingerprint is unchanged. The fingerprint hashes the notebook's
cells (their sources, not outputs or metadata: saving it in Jupyter changes nothing), its merged
parameters, the previous stage's fingerprint (so a change upstream reruns everything downstream)
and the package's code and data (`reuse.code_digest`: what the notebooks import, and the "Try it"
record they glue). It is
stored in `<artifacts>/.stamps/<stem>.json` only after the stage succeeds. Inside a stage that
reruns, each expensive job (a model trained, a probe, pairs sampled, a model scored) is still
skipped when its own ingredients are unchanged (`inbol_utils.runner.reuse`): a new tau reruns
notebooks 01-04, but not the probe of the base models. Jobs live in one store that every
artifacts folder links into (data/jobs, or `INBOL_JOBS`), so a params file with its own folder
reuses every job another folder already ran; if the store was emptied, every stage reruns.

Each stage that runs adds its profile to `<artifacts>/profile.json`: wall time, each cell's
time, the wait for its kernel (see below), the core-seconds and tokens of each part of the work
(`inbol_utils.runner.profiling`), apart those of the jobs answered from their records, and the
parameters it ran with; `make bench` prints it, and the last
stage (notebook 06) prices a GPU run from it (`inbol_utils.book.costs`), so every earlier stage's
profile is written before the next stage starts.

Each stage runs in a fresh kernel, started when the stage before it starts and with the
notebook's imports done by then (`warm_kernel`).
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import csv
import filecmp
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import nbformat
import papermill
import yaml
from jupyter_core.utils import ensure_event_loop

from ..artifacts import atomic_dir, atomic_file, write_json
from . import environment, parameters, profiling, reuse, staging, warm_kernel
from .parameters import PROJECT_ROOT
from .reuse import code_digest

# How long a stage waits for its kernel to be ready (`warm_kernel`): the first waits for its
# imports, 10-14 s on 2 cores.
KERNEL_READY_SECONDS = 300
TOP_LEVEL_KEYS = {"artifacts", "common", "stages"}
STAGE_KEYS = {"notebook", "parameters"}
# What stops a run (`ctrl_c_deferred`, `ctrl_c_cancels`, `terminate_as_ctrl_c`): Ctrl-C, and SIGTERM.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


class PipelineError(RuntimeError):
    """A problem the user must fix (bad parameter file, missing notebook, failed stage)."""


# ----------------------------------------------------------------------------------------------
# reading the parameter file


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads 5e-4 (no dot) as text; this loader reads it as the number it means."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))


def _mapping(value: Any, where: str) -> dict:
    """Accept a mapping or nothing; anything else is a typo the user should hear about."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PipelineError(f"{where} must be a mapping (key: value), got {type(value).__name__}.")
    return dict(value)


def _check_keys(mapping: dict, allowed: set[str], message: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise PipelineError(f"{message} {key!r}; allowed keys are {sorted(allowed)}.")


def load_params(params_path: str | os.PathLike) -> dict:
    """Load and check a parameter file, returning {"artifacts", "common", "stages": [...]}.

    Each returned stage has `stem`, `notebook` (resolved Path), `parameters` (what papermill
    gets: the artifacts folder, then `common`, then the stage's own; shared values only where
    the notebook declares them) and `values` (those over the notebook's defaults: every value
    the notebook will run with). Every stage's values are checked against its notebook's schema
    (`inbol_utils.runner.parameters`) and every problem of the file is reported at once: checking
    everything up front means a typo in stage 4 stops the run before stage 0 spends minutes
    training.
    """
    params_path = Path(params_path)
    if not params_path.is_file():
        raise PipelineError(f"Parameter file {params_path} not found. Pass a YAML file such as "
                            f"params/default.yaml.")
    with open(params_path) as handle:
        try:
            raw = yaml.load(handle, Loader=_Loader)
        except yaml.YAMLError as err:
            raise PipelineError(f"{params_path} is not valid YAML: {err}") from None
    raw = _mapping(raw, f"{params_path}")
    _check_keys(raw, TOP_LEVEL_KEYS, f"{params_path}: unknown top-level key")
    artifacts = raw.get("artifacts")
    if not isinstance(artifacts, str) or not artifacts:
        raise PipelineError(f"{params_path}: set `artifacts:` to the folder the notebooks read "
                            f"and write (e.g. data/default).")
    common = _mapping(raw.get("common"), f"{params_path}: `common`")
    if "artifacts" in common:
        raise PipelineError(f"{params_path}: set `artifacts` at the top level only, not in "
                            f"`common`.")
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise PipelineError(f"{params_path}: `stages:` must be a non-empty list of "
                            f"{{notebook: ..., parameters: {{...}}}} entries.")

    stages, seen, declared_anywhere, problems = [], {}, set(), []
    for i, entry in enumerate(stages_raw):
        where = f"{params_path}: stage {i}"
        entry = _mapping(entry, where)
        _check_keys(entry, STAGE_KEYS, f"{where}: unknown key")
        if not isinstance(entry.get("notebook"), str):
            raise PipelineError(f"{where}: `notebook:` (the path of an .ipynb) is missing.")
        notebook = parameters.project_path(entry["notebook"])
        if not notebook.is_file():
            raise PipelineError(f"{where}: notebook {entry['notebook']} not found (looked at "
                                f"{notebook}). Fix the path or remove the stage; the study's notebooks are "
                                f"{', '.join(sorted(p.name for p in (PROJECT_ROOT / 'notebooks').glob('*.ipynb')))}.")
        stem = notebook.stem
        if stem in seen:
            raise PipelineError(f"{where}: notebook name {stem!r} is used by stage {seen[stem]} "
                                f"too; executed notebooks would overwrite each other.")
        seen[stem] = i
        own = _mapping(entry.get("parameters"), f"{where} `parameters`")
        if "artifacts" in own:
            raise PipelineError(f"{where}: set `artifacts` at the top level only, so every stage "
                                f"reads what the previous one wrote.")
        defaults = notebook_defaults(notebook)
        declared_anywhere |= set(defaults)
        # Shared values go only to the notebooks that declare them (00 has no use for tau).
        shared = {k: v for k, v in {"artifacts": artifacts, **common}.items() if k in defaults}
        values = {**defaults, **shared, **own}
        try:
            problems += [f"{where}: {p}" for p in parameters.problems(stem, values)]
        except parameters.ParameterError as err:
            raise PipelineError(f"{where}: {err}") from None
        stages.append({"stem": stem, "notebook": notebook, "parameters": {**shared, **own},
                       "values": values})
    unused = sorted(set(common) - declared_anywhere)
    if unused:
        raise PipelineError(f"{params_path}: no notebook declares the common parameter(s) {unused}; "
                            f"fix the name or remove it.")
    if not problems:  # each stage's values allowed on their own: then what they ask of each other
        problems += [f"{params_path}: {p}" for p in parameters.across_stages({s["stem"]: s["values"] for s in stages})]
    if problems:
        raise PipelineError("\n".join(problems))
    return {"artifacts": artifacts, "common": common, "stages": stages}


def notebook_defaults(notebook: Path) -> dict[str, Any]:
    """The values of a notebook's `parameters` cell (papermill needs them to be literals)."""
    defaults = {}
    for name, declared in papermill.inspect_notebook(str(notebook)).items():
        try:
            defaults[name] = ast.literal_eval(declared["default"])
        except (ValueError, SyntaxError):
            raise PipelineError(f"{notebook.name}: the default of parameter {name!r} "
                                f"({declared['default']}) is not a literal value.") from None
    return defaults


def profile_name(params_path: str | os.PathLike) -> str:
    """A profile is named by its parameter file: params/smoke.yaml is the profile "smoke"."""
    return Path(params_path).stem


def default_executed_dir(params_path: str | os.PathLike) -> Path:
    """Where a profile's executed notebooks go: the book of `make book PARAMS=params/<name>.yaml`."""
    return PROJECT_ROOT / "book" / "executed" / profile_name(params_path)


def partial_notebook(artifacts: str | os.PathLike, stem: str) -> Path:
    """Where a notebook runs (papermill saves after every cell) and where a failed one stays:
    beside the artifacts, so the book never sees it and a restored folder keeps no trace."""
    artifacts = parameters.project_path(artifacts)
    return artifacts.with_name(f"{artifacts.name}.partial") / f"{stem}.ipynb"


# ----------------------------------------------------------------------------------------------
# fingerprints and stamps


def fingerprint(notebook: Path, parameters: dict, previous: str, code: str) -> str:
    """Hash everything a stage's outputs depend on that the runner can see: the notebook's cells
    (`notebook_content`), its parameters, the stages before it and the code.

    `previous` chains the stages: a new upstream fingerprint changes every downstream one.
    """
    h = hashlib.sha256()
    h.update(notebook_content(notebook))
    h.update(b"\0" + json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(b"\0" + previous.encode())
    h.update(b"\0" + code.encode())
    return h.hexdigest()


def notebook_content(notebook: Path) -> bytes:
    """What a notebook says: each cell's kind and source, not its outputs, execution counts or
    metadata, which opening, running and saving it in Jupyter change (the chapter's own are
    made afresh when the stage runs)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return json.dumps([[cell.cell_type, cell.source] for cell in cells]).encode()


def stamp_path(artifacts: str | os.PathLike, stem: str) -> Path:
    """Where a stage's stamp lives: beside its artifacts, so deleting them invalidates it."""
    return parameters.project_path(artifacts) / ".stamps" / f"{stem}.json"


def is_current(stamp: Path, executed: Path, fp: str) -> bool:
    """A stage is current only if its stamp matches AND the book still has its notebook."""
    if not (stamp.is_file() and executed.is_file()):
        return False
    try:
        return json.loads(stamp.read_text()).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------------------------
# running


def execute_stage(notebook: Path, partial: Path, parameters: dict, log_output: bool,
                  kernel: warm_kernel.WarmKernel) -> None:
    """Run one notebook with papermill into `partial` (it saves after every cell), in `kernel`
    (`warm_kernel`: started, perhaps during the previous stage, for this stage); on failure the
    message names the stage, the cell, the error and where the partial notebook is. On Ctrl-C
    the kernel is killed, with what it started (its process group), before the artifacts are
    put back: nothing of the stage may write to them after."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        warm_kernel.wait(kernel, KERNEL_READY_SECONDS)
        with ctrl_c_cancels(ensure_event_loop()):
            papermill.execute_notebook(
                str(notebook), str(partial), parameters=parameters, cwd=str(PROJECT_ROOT),
                kernel_name="python3", progress_bar=False, log_output=log_output, km=kernel.manager,
            )
    except KeyboardInterrupt:
        warm_kernel.stop(kernel)
        raise
    except papermill.PapermillExecutionError as err:
        raise PipelineError(
            f"Stage {partial.stem} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"  The partially executed notebook is {partial}\n"
            f"  The artifacts are as they were before the stage. Fix the cause and rerun; "
            f"earlier stages that are current will be skipped."
        ) from None
    except Exception as err:  # kernel died, bad kernel name, unreadable notebook...
        raise PipelineError(
            f"Stage {partial.stem} failed: {type(err).__name__}: {err}\n"
            f"  The partially executed notebook (if any) is {partial}\n"
            f"  The artifacts are as they were before the stage."
        ) from None


@contextmanager
def ctrl_c_cancels(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Make a Ctrl-C in the block cancel papermill's requests to the kernel (what waits in
    `loop`), then raise KeyboardInterrupt in place of what that made papermill raise (nbclient
    takes a cancelled request for a dead kernel). Raised inside one of those asyncio tasks, a
    KeyboardInterrupt would be raised again by each task that awaits it, in any later use of the
    loop: the kernel's stop, say. (Where Ctrl-C is ignored, or another's to handle, it stays so.)"""
    ours, pressed = [s for s in INTERRUPTS if signal.getsignal(s) is signal.default_int_handler], []

    def cancel() -> None:
        pressed.append(True)
        for task in asyncio.all_tasks(loop):
            task.cancel()

    for signum in ours:
        loop.add_signal_handler(signum, cancel)
    try:
        yield
    except BaseException:
        if not pressed:
            raise
    finally:
        for signum in ours:
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.default_int_handler)  # asyncio leaves SIGTERM at its default
    if pressed:
        raise KeyboardInterrupt


def publish(partial: Path, executed: Path) -> None:
    """The finished notebook, its figures labelled (`label_figures`), replaces the book's copy
    in one rename (and leaves no empty folder of partial notebooks behind)."""
    notebook = nbformat.read(partial, as_version=4)
    label_figures(notebook, f"{executed.parent.name}-{executed.stem}")
    with atomic_file(executed, "w") as handle:
        nbformat.write(notebook, handle)
    partial.unlink()
    if not any(partial.parent.iterdir()):
        partial.parent.rmdir()


def label_figures(notebook: nbformat.NotebookNode, prefix: str) -> None:
    """Label each figure cell (a caption in its `mystnb.figure` metadata) `<prefix>-fig<n>`:
    Sphinx numbers only labelled figures, and a label must be unique in the book, where two
    profiles' copies of a chapter can meet (the default book holds the easy-VQA part)."""
    figures = [cell for cell in notebook.cells if "figure" in cell.metadata.get("mystnb", {})]
    for n, cell in enumerate(figures, 1):
        cell.metadata["mystnb"]["figure"]["name"] = f"{prefix}-fig{n}"


def publish_results(artifacts: Path, executed_dir: Path) -> bool:
    """Mirror `<artifacts>/results/*.csv` into `<executed_dir>/results/`, where the chapters link
    them as downloads, replacing the book's copy in one rename (a copy cut short leaves the old
    set whole). Returns whether anything changed; an unchanged copy is left alone."""
    source = artifacts / "results"
    files = sorted(source.glob("*.csv")) if source.is_dir() else []
    target = executed_dir / "results"
    present = sorted(target.iterdir()) if target.is_dir() else []
    if [f.name for f in files] == [p.name for p in present] and all(
            filecmp.cmp(f, target / f.name, shallow=False) for f in files):
        return False
    if not files:
        shutil.rmtree(target)
        return True
    with atomic_dir(target) as tmp:
        tmp.chmod(0o755)  # a folder of the published site, not a private temporary one
        for f in files:
            shutil.copyfile(f, tmp / f.name)
    return True


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {part: round(value, 1) for part, value in seconds.items()}


def stage_profile(executed: Path, parts: Path, seconds: float, values: dict) -> dict:
    """Where one stage's wall time went: each cell (papermill's timing), the wall time no cell
    accounts for (papermill's own, and the wait for whatever of its kernel's start and imports
    was not done while the stage before ran), and the core-seconds and tokens of each part
    of the work (`profiling`), summed over the stage's processes, and apart those the jobs
    answered from their records took when they ran; with the parameter `values` it ran with,
    so that the counts can be carried to other sizes (`costs`)."""
    cells = []
    for cell in json.loads(executed.read_text())["cells"]:
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if cell["cell_type"] == "code" and duration is not None:
            lines = [line for line in "".join(cell["source"]).splitlines() if line.strip()]
            cells.append({"cell": lines[0][:70] if lines else "", "seconds": round(duration, 2)})
    in_cells = sum(c["seconds"] for c in cells)
    return {"seconds": round(seconds, 1), "kernel_and_papermill": round(seconds - in_cells, 1),
            "cells": cells, "parts_core_seconds": _rounded(profiling.read(parts)),
            "parts_tokens": profiling.read(parts, "tokens"),
            "reused_core_seconds": _rounded(profiling.read(parts, "reused seconds")),
            "reused_tokens": profiling.read(parts, "reused tokens"), "parameters": values,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def save_profile(artifacts: str | os.PathLike, stem: str, profile: dict) -> None:
    """Keep the latest profile of every stage in <artifacts>/profile.json (`make bench` reads it)."""
    path = parameters.project_path(artifacts) / "profile.json"
    stages = json.loads(path.read_text())["stages"] if path.is_file() else {}
    stages[stem] = profile
    write_json(path, {"machine": environment.machine(), "stages": dict(sorted(stages.items()))})


def parts_path(artifacts: Path, stem: str) -> Path:
    """Where a stage's processes add up the core-seconds and tokens of each part of the work."""
    return artifacts / ".profile" / f"{stem}.json"


def start_kernel(artifacts: Path, stage: dict) -> warm_kernel.WarmKernel:
    """A kernel for `stage` (`warm_kernel`); it writes its profile to `parts_path` (see
    profiling), which is in its environment from the start."""
    env = {**os.environ, profiling.ENV: str(parts_path(artifacts, stage["stem"]))}
    return warm_kernel.start(stage["notebook"], PROJECT_ROOT, env)


@dataclass
class Progress:
    """Where a run is, for the one line that a Ctrl-C prints (`PipelineInterrupted`)."""
    artifacts: Path | None = None
    running: str | None = None  # the stage whose changes are not kept yet: a stop undoes them
    kept: str | None = None  # the last stage whose changes were kept

    def interrupted(self) -> str:
        """The line: which stage was running, if any, and what the artifacts folder holds now."""
        folder = self.artifacts or "the artifacts folder"
        if self.running:
            return f"pipeline interrupted during stage {self.running}: {folder} is as it was before that stage."
        if self.kept:
            return (f"pipeline interrupted between stages, after {self.kept}: {folder} keeps what the "
                    f"stages up to {self.kept} wrote.")
        return f"pipeline interrupted before any stage ran: no stage changed {folder}."


class PipelineInterrupted(KeyboardInterrupt):
    """Ctrl-C, with the line that says where the run was and what the artifacts folder holds."""


@contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Let the block finish before a Ctrl-C takes effect: a kernel half started could not be
    stopped, and a folder half put back, or a stage kept but not yet known to be, would make
    the line that Ctrl-C prints untrue. (Where Ctrl-C is ignored, or another's to handle, it
    stays so.)"""
    ours, pressed = [s for s in INTERRUPTS if signal.getsignal(s) is signal.default_int_handler], []
    for signum in ours:
        signal.signal(signum, lambda *_: pressed.append(True))
    try:
        yield
    finally:
        for signum in ours:
            signal.signal(signum, signal.default_int_handler)
    if pressed:
        raise KeyboardInterrupt


@contextmanager
def terminate_as_ctrl_c() -> Iterator[None]:
    """In the block, SIGTERM (`kill`, `timeout`, a cancelled CI job) stops the run as Ctrl-C does:
    the stage undone, every kernel killed with its workers, one line. At its default, it ended the
    runner alone, and the kernels' pool workers trained on, orphaned, for minutes. (Where SIGTERM
    has another handler, or is ignored, it stays so.)"""
    default = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if default:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        if default:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_stage(stage: dict, artifacts: Path, log_output: bool, kernel: warm_kernel.WarmKernel,
              progress: Progress) -> tuple[float, list[str]]:
    """Run one stage in `kernel` (`start_kernel`) so that it changes `artifacts` completely or
    not at all (`staging`), its notebook left in `partial_notebook`, and `progress` says which.
    Returns its wall time and the files it wrote in place (none in this study; a failure could
    not have restored them)."""
    stem = stage["stem"]
    partial = partial_notebook(artifacts, stem)
    staging.take(artifacts, stem)  # a failure below puts the artifacts back as they are now
    try:
        stamp_path(artifacts, stem).unlink(missing_ok=True)  # a half-run stage must never look current
        parts = parts_path(artifacts, stem)
        parts.parent.mkdir(parents=True, exist_ok=True)
        parts.unlink(missing_ok=True)
        start = time.perf_counter()
        execute_stage(stage["notebook"], partial, stage["parameters"], log_output, kernel)
        seconds = time.perf_counter() - start
        save_profile(artifacts, stem, stage_profile(partial, parts, seconds, stage["values"]))
    except BaseException as err:
        with ctrl_c_deferred():
            _, damaged = staging.restore(artifacts)
        if damaged and isinstance(err, PipelineError):
            raise PipelineError(f"{err}\n  Except {damaged}: the stage wrote them in place, so their "
                                f"old bytes are lost.") from None
        raise
    with ctrl_c_deferred():
        written_in_place = staging.drop(artifacts)
        progress.running, progress.kept = None, stem
    return seconds, written_in_place


def run_pipeline(params_path: str | os.PathLike, executed_dir: str | os.PathLike | None = None,
                 force: bool = False, only: list[str] | None = None,
                 log_output: bool = False, rerun_from: str | None = None) -> list[dict]:
    """Run the stages of `params_path` in order; return one record per stage.

    Each record: stem, status ("ran", "skipped" or "not selected"), seconds, fingerprint,
    executed (path) and, for a stage that ran, written_in_place (files it modified in place,
    see `staging`; none in this study). `executed_dir` defaults to the profile's
    (`default_executed_dir`); after each stage its `results/` mirrors the artifacts' results
    CSVs (`publish_results`). `only` limits which stages may run (by notebook stem); `force`
    reruns them even when current; `rerun_from` (a stem, or its number: "03") reruns that stage
    and every later one even when current, and the earlier ones only if they are not (what
    `make chapter CH=03` does). Raises PipelineError on the first problem; a failed stage
    leaves the artifacts as they were before it and writes no stamp, so the next run retries it.
    The run holds the artifacts folder (`staging.held`): a second runner on it stops with a
    PipelineError before it touches anything. Ctrl-C raises PipelineInterrupted, which says
    where the run was and what the folder holds.
    """
    progress = Progress()
    try:
        config = load_params(params_path)
        stems = [s["stem"] for s in config["stages"]]
        unknown = sorted(set(only or []) - set(stems))
        if unknown:
            raise PipelineError(f"--only names {unknown}, which are not stages of {params_path}; "
                                f"stages are {stems}.")
        first_rerun = rerun_index(stems, rerun_from, params_path) if rerun_from else None
        executed_dir = Path(executed_dir) if executed_dir is not None else default_executed_dir(params_path)
        progress.artifacts = artifacts = parameters.project_path(config["artifacts"])
        with terminate_as_ctrl_c(), hold(artifacts):
            executed_dir.mkdir(parents=True, exist_ok=True)
            interrupted, damaged = staging.restore(artifacts)
            if interrupted:
                print(f"restored {artifacts} as it was before stage {interrupted}, which did not finish"
                      + (f" (except {damaged}, written in place)" if damaged else ""), flush=True)
            gone = reuse.missing(artifacts)
            if gone:
                print(f"{len(gone)} outputs in {artifacts} link to jobs no longer in the job store "
                      f"({reuse.store()}): every stage runs again, reusing what the store still holds", flush=True)
            plan = plan_stages(config, executed_dir, force or bool(gone), only, first_rerun)
            return run_plan(plan, artifacts, executed_dir, log_output, progress)
    except KeyboardInterrupt:
        raise PipelineInterrupted(progress.interrupted()) from None


@contextmanager
def hold(artifacts: Path) -> Iterator[None]:
    """Hold the artifacts folder for the run (`staging.held`): another runner's hold is a
    problem for the user, in one line; a killed runner's is taken over, and said so."""
    try:
        with staging.held(artifacts) as left:
            if left:
                print(f"{artifacts} was held by a runner that ended without letting go ({left}); "
                      f"taking it over", flush=True)
            yield
    except staging.InUse as err:
        raise PipelineError(str(err)) from None


def rerun_index(stems: list[str], stage: str, params_path: str | os.PathLike) -> int:
    """The position of `stage` (a stem, or the number it starts with: "03" or "3") among `stems`."""
    prefixes = [stem.split("_")[0] for stem in stems]
    found = [i for i, (stem, prefix) in enumerate(zip(stems, prefixes)) if stem == stage or prefix == stage
             or (stage.isdigit() and prefix.isdigit() and int(prefix) == int(stage))]
    if len(found) != 1:
        raise PipelineError(f"--rerun-from {stage!r} names no stage of {params_path}; stages are {stems} "
                            f"(give a name or its number, e.g. {stems[0].split('_')[0]}).")
    return found[0]


def plan_stages(config: dict, executed_dir: Path, force: bool, only: list[str] | None,
                first_rerun: int | None = None) -> list[dict]:
    """Every stage's fingerprint, and whether it runs, known before any runs: every stage from
    position `first_rerun` on (if given) runs even if current."""
    plan, previous, code = [], "", code_digest()
    for index, stage in enumerate(config["stages"]):
        fp = fingerprint(stage["notebook"], stage["parameters"], previous, code)
        executed = executed_dir / f"{stage['stem']}.ipynb"
        stamp = stamp_path(config["artifacts"], stage["stem"])
        current = is_current(stamp, executed, fp)
        selected = only is None or stage["stem"] in only
        plan.append({"stage": stage, "fingerprint": fp, "executed": executed, "stamp": stamp,
                     "current": current, "selected": selected,
                     "runs": selected and (force or not current or (first_rerun is not None and index >= first_rerun))})
        previous = fp
    return plan


def run_plan(plan: list[dict], artifacts: Path, executed_dir: Path, log_output: bool,
             progress: Progress) -> list[dict]:
    """Run or skip each stage of `plan` (`plan_stages`), as `run_pipeline` says."""
    records, upstream_current, kernels = [], True, {}  # kernels started and not yet stopped, by stage
    total_start = time.perf_counter()
    try:
        for i, step in enumerate(plan):
            stage, fp, executed, stamp = step["stage"], step["fingerprint"], step["executed"], step["stamp"]
            stem = stage["stem"]
            record = {"stem": stem, "status": "skipped", "seconds": 0.0, "fingerprint": fp,
                      "executed": str(executed)}
            header = f"[{i + 1}/{len(plan)}] {stem}"
            if not step["selected"]:
                record["status"] = "not selected"
                if not step["current"]:
                    upstream_current = False
                    print(f"{header}: not selected, and out of date", flush=True)
            elif not step["runs"]:
                print(f"{header}: up to date, skipped", flush=True)
            else:
                missing = parameters.missing_inputs(stem, {**stage["values"], "artifacts": str(artifacts)})
                if missing:  # found here, before the kernel starts; the notebook checks them again
                    raise PipelineError("\n".join(missing))
                print(f"{header}: running {stage['notebook'].name} ...", flush=True)
                progress.running = stem
                following = next((later["stage"] for later in plan[i + 1:] if later["runs"]), None)
                with ctrl_c_deferred():  # the following stage's kernel is ready when this stage ends (warm_kernel)
                    for starting in (stage, following):
                        if starting and starting["stem"] not in kernels:
                            kernels[starting["stem"]] = start_kernel(artifacts, starting)
                seconds, written_in_place = run_stage(stage, artifacts, log_output, kernels[stem], progress)
                with ctrl_c_deferred():  # a stage that failed or was interrupted leaves its kernel to the end
                    warm_kernel.stop(kernels.pop(stem))
                record.update(status="ran", seconds=seconds, written_in_place=written_in_place)
                if written_in_place:
                    print(f"{header}: wrote {written_in_place} in place; a failure could not have "
                          f"restored them (write by replacing: inbol_utils.artifacts.atomic_file)", flush=True)
                publish(partial_notebook(artifacts, stem), executed)
                if upstream_current:  # last: a stamp means the artifacts and the chapter are both done
                    write_json(stamp, {"fingerprint": fp, "notebook": str(stage["notebook"]),
                                       "parameters": stage["parameters"],
                                       "seconds": record["seconds"]})
                else:
                    print(f"{header}: not stamped, an upstream stage is out of date", flush=True)
                print(f"{header}: done in {record['seconds']:.1f} s", flush=True)
                if stem == "00_world_and_base_model":
                    for line in base_model_warnings(artifacts):
                        print(line, flush=True)
            publish_results(artifacts, executed_dir)  # also when skipped: a book folder made afresh
            records.append(record)
    finally:
        with ctrl_c_deferred():
            # A stage failed or was interrupted: its own kernel may still be running a cell, and those
            # started ahead of later stages their imports.
            for kernel in kernels.values():
                warm_kernel.stop(kernel)
    print(f"pipeline: {sum(r['status'] == 'ran' for r in records)} ran, "
          f"{sum(r['status'] == 'skipped' for r in records)} skipped, "
          f"total {time.perf_counter() - total_start:.1f} s", flush=True)
    for line in base_model_warnings(artifacts):  # again at the end, where a reader of the log looks
        print(line, flush=True)
    return records


BASE_MODELS = "results/base_models.csv"  # notebook 00's check of each base model (`base_targets.RESULTS_FILE`)


def base_model_warnings(artifacts: Path) -> list[str]:
    """One line per base model that missed its targets (notebook 00 flags them): a result
    drawn from such a model carries a caveat, and the runner says so rather than go on silently."""
    path = artifacts / BASE_MODELS
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [f"warning: the base model of seed {row['seed']} (world {row['world']}) misses its targets after "
                f"{int(row['steps']):,} steps: {row['misses']}; results on it carry that caveat (see chapter 0)"
                for row in csv.DictReader(handle) if row["meets_targets"] != "True"]


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0 ok, 1 a problem the message explains, 130
    Ctrl-C, with one line that says what the artifacts folder holds)."""
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.runner.pipeline",
                                     description="Run the study's notebooks in order.")
    parser.add_argument("params", help="YAML parameter file, e.g. params/default.yaml")
    parser.add_argument("--executed-dir", default=None,
                        help="where executed notebooks go (default: book/executed/<profile>, the "
                             "profile being the parameter file's name)")
    parser.add_argument("--force", action="store_true", help="rerun stages even if current")
    parser.add_argument("--only", nargs="+", metavar="STEM",
                        help="run only these stages (notebook names without .ipynb)")
    parser.add_argument("--rerun-from", metavar="STAGE",
                        help="rerun this stage (its name or number, e.g. 03) and every later one, even "
                             "if current; earlier ones run only if they are not current")
    parser.add_argument("--log-output", action="store_true",
                        help="stream each notebook's cell output to the terminal")
    args = parser.parse_args(argv)
    if args.log_output:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run_pipeline(args.params, args.executed_dir, force=args.force, only=args.only,
                     log_output=args.log_output, rerun_from=args.rerun_from)
    except PipelineError as err:
        print(f"pipeline stopped: {err}", file=sys.stderr, flush=True)
        return 1
    except PipelineInterrupted as err:
        print(err, file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
