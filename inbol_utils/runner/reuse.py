"""Reuse of finished work: a job whose ingredients did not change is not run again.

The runner reruns a whole stage when anything it depends on changes, but most jobs inside a
stage depend on only part of it: a new tau relabels the data and leaves the probe of the base
model as it was; a new beta retrains the preference stage and leaves IDK-IT and its pairs.
So each expensive job has a *recipe*: a digest of its arguments, of the recipes of the
artifacts it reads, of the package's code and of the numerics it runs with (`numerics`: the
float kernels, the device, the library versions). Recipes chain through the inputs' recipes, not
their bytes, so checking costs no hashing of models or images; an input without a record
(written by hand or by an older version) has no recipe, and nothing made from it is ever reused.

Finished jobs live in one store that every artifacts folder shares (`store`: data/jobs, or the
folder `INBOL_JOBS` names), each in a folder named by its recipe (`entry`) that holds its
outputs and its record: the recipe, the value the job returned and the work it took. An
artifacts folder holds links into the store. Run again with the same recipe, from this folder or
any other, a job is answered from its record: a copy of a params file with its own artifacts
folder and one parameter changed trains only what that parameter invalidates, and no model is
kept twice on disk.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import pickle
import platform
import shutil
import tempfile
import tokenize
import uuid
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from . import profiling
from .parameters import project_path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # inbol_utils/
RECORD = "record.pkl"  # an entry's record, beside its outputs
T = TypeVar("T")
# The libraries whose versions a job's numbers can depend on (and environment.json records).
LIBRARIES = ("torch", "transformers", "peft", "datasets", "accelerate", "tokenizers", "safetensors", "numpy",
             "pandas", "pyarrow", "scipy", "scikit-learn", "pillow", "papermill")


# Code that presents results (prose phrases, figures, cost estimates, two runs compared), runs
# the notebooks (runner, parameter checks, staging, time records) or measures (tools): no job's
# result depends on it, so editing the book's prose reruns the notebooks (their stamps hash all
# of the package) but retrains nothing. A folder here leaves out everything in it.
PRESENTATION = ("book", "tools", "replication.py", "runner/parameters.py", "runner/pipeline.py",
                "runner/profiling.py", "runner/reuse.py", "runner/staging.py", "runner/warm_kernel.py")


def modules(leave_out: tuple[str, ...] = ()) -> list[Path]:
    """The package's modules and data files (the "Try it" record the chapters glue) but
    `leave_out` (paths relative to the package, or whole folders)."""
    found = []
    for path in sorted(p for p in PACKAGE_DIR.rglob("*") if p.suffix in (".py", ".json")):
        name = path.relative_to(PACKAGE_DIR).as_posix()
        if name not in leave_out and name.split("/")[0] not in leave_out:
            found.append(path)
    return found


def code_digest(leave_out: tuple[str, ...] = ()) -> str:
    """Hash the code and data of the package's modules but `leave_out`: the notebooks and jobs
    run and read them, so a change there can change results. The code, not the text
    (`_code_of`): editing a comment or a docstring reruns and retrains nothing."""
    h = hashlib.sha256()
    for path in modules(leave_out):
        content = _code_of(path.read_bytes()) if path.suffix == ".py" else path.read_bytes()
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + content + b"\0")
    return h.hexdigest()


# Tokens that are layout, not code, and tokens kept by their kind, their text being layout.
LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
STRUCTURE = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


@functools.cache
def _code_of(source: bytes) -> bytes:
    """A module's tokens without its comments, docstrings and layout: what runs, however it is
    worded, wrapped or indented (only command-line help texts read a docstring, and no result
    reads those). Tokens, not the syntax tree, whose dump changes with every Python version; an
    f-string counts as one token, as Python 3.11 gives it (3.12 splits it into parts)."""
    text = source.decode("utf-8")
    docstrings = {(node.body[0].lineno, node.body[0].col_offset) for node in ast.walk(ast.parse(text))
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and ast.get_docstring(node, clean=False) is not None}
    lines = text.splitlines(keepends=True)
    kept, depth, start, docstring = [], 0, (0, 0), False
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        kind = tokenize.tok_name[token.type]
        if docstring and token.type == tokenize.NEWLINE:  # the end of a docstring's line goes with it
            docstring = False
        elif kind == "FSTRING_START":
            depth, start = depth + 1, start if depth else token.start
        elif kind == "FSTRING_END":
            depth -= 1
            if not depth:
                kept.append(_span(lines, start, token.end))
        elif token.type == tokenize.STRING and token.start in docstrings:
            docstring = True
        elif depth or token.type in LAYOUT:
            continue
        else:
            kept.append(kind if token.type in STRUCTURE else token.string)
    return "\n".join(kept).encode()


def _span(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    """The source text from `start` to `end` (tokenize's (row, column) positions)."""
    if start[0] == end[0]:
        return lines[start[0] - 1][start[1]:end[1]]
    return lines[start[0] - 1][start[1]:] + "".join(lines[start[0]:end[0] - 1]) + lines[end[0] - 1][:end[1]]


# Settings that cap the instruction set of oneDNN's and MKL's kernels, which torch does not
# report. They move the floats too (GELU is oneDNN's: ONEDNN_MAX_CPU_ISA=AVX2 changes its last
# bits on an AVX-512 machine), so a job run under one must not answer for a job run without.
KERNEL_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def float_kernels() -> str:
    """The float kernels torch picked for this CPU ("AVX512"; `ATEN_CPU_CAPABILITY` can choose
    others), followed by the `KERNEL_CAPS` that are set: "AVX2 (ONEDNN_MAX_CPU_ISA=AVX2)"."""
    import torch

    caps = [f"{name}={os.environ[name]}" for name in KERNEL_CAPS if os.environ.get(name)]
    kernels = torch.backends.cpu.get_cpu_capability()
    return f"{kernels} ({', '.join(caps)})" if caps else kernels


@functools.cache
def numerics() -> dict:
    """What a job's numbers depend on besides its code and ingredients: the `float_kernels`, the
    device, and the Python and library versions. Every job runs with `environment.THREADS`
    threads whoever starts it, so the thread count is in the code, not here. A rerun with other
    kernels, on a GPU or after an upgrade then trains again, where it would otherwise answer
    from another setup's jobs."""
    import torch

    return {"float_kernels": float_kernels(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "python": platform.python_version(),
            "libraries": {name: _version(name) for name in LIBRARIES}}


def _version(library: str) -> str:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:  # peft, say, where LoRA is not installed (its `lora` extra)
        return "not installed"


def recipe(**ingredients) -> str:
    """The digest of a job's ingredients (plain values and input recipes), of the code its
    result can depend on (every module but `PRESENTATION`) and of the `numerics` it runs with."""
    text = json.dumps({**ingredients, "code": code_digest(PRESENTATION), "numerics": numerics()},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def store() -> Path:
    """The job store: the folder `INBOL_JOBS` names, data/jobs if it names none (a relative path
    is read from the project's root, like the params files' paths)."""
    return project_path(os.environ.get("INBOL_JOBS") or "data/jobs")


def entry(made_from: str) -> Path:
    """The store's folder for the job of recipe `made_from`."""
    return store() / made_from


def _saved(folder: Path) -> dict | None:
    try:
        return pickle.loads((folder / RECORD).read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return None


def recipe_of(output: str | Path) -> str:
    """The recipe `output` was made from: its stored job's. A fresh random token (never
    matches) if it is not a link to a stored job."""
    output = Path(output)
    saved = _saved(output.resolve().parent) if output.is_symlink() and output.exists() else None
    return saved["recipe"] if saved else f"unrecorded-{uuid.uuid4().hex}"


def reuse(output: str | Path, made_from: str, make: Callable[[], T], also: Iterable[str] = ()) -> T:
    """`make()`, which writes `output` (and the siblings named in `also`), unless the store
    holds the job of recipe `made_from`: then `output` links to it, `make` is not called, the
    value it returned that time is returned and the work it took then is counted as reused
    (`profiling.count_reused`). A job enters the store only once `make` has returned, so an
    interrupted job is never taken for a finished one."""
    output = Path(output)
    names = [output.name, *also]
    found = entry(made_from)
    saved = _complete(found, names)
    if saved is not None:
        for name in names:
            link(output.parent / name, found / name)
        profiling.count_reused(saved["work"])
        return saved["result"]
    for name in names:  # a link into the store is replaced, never written through
        if (output.parent / name).is_symlink():
            (output.parent / name).unlink()
    before = profiling.counts()
    result = make()
    keep(output.parent, names, made_from, result, profiling.work_since(before))
    return result


def keep(home: str | Path, names: Iterable[str], made_from: str, result=None, work: dict | None = None) -> None:
    """Move the finished outputs `names` of `home` into the store as the job of recipe
    `made_from`, with its `result` and the `work` it took (`profiling.work_since`), and link
    them back. The entry is built under a temporary name and renamed into place whole."""
    home, names, found = Path(home), list(names), entry(made_from)
    found.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{made_from[:16]}.tmp-", dir=found.parent))
    try:
        for name in names:
            shutil.move(home / name, building / name)
        (building / RECORD).write_bytes(pickle.dumps({"recipe": made_from, "result": result,
                                                      "work": work or {}, "outputs": names}))
        if found.exists() and _complete(found, names) is None:  # damaged by hand: replaced
            shutil.rmtree(found, ignore_errors=True)
        try:
            os.replace(building, found)
        except OSError:  # the same job, finished meanwhile by another process (identical seeds' worlds)
            if _complete(found, names) is None:
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)  # gone once renamed; else a duplicate or a failure
    for name in names:
        link(home / name, found / name)


def _complete(folder: Path, names: list[str]) -> dict | None:
    """The record of a store entry that holds it and every output in `names`; None if it does not."""
    saved = _saved(folder)
    return saved if saved is not None and all((folder / name).exists() for name in names) else None


def link(path: str | Path, target: str | Path) -> None:
    """Make `path` a link to `target` (relative, so a data folder can move whole), replacing
    whatever `path` was."""
    path, target = Path(path), Path(target).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target, path.parent.resolve())
    if path.is_symlink() and os.readlink(path) == relative:
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    fresh = path.with_name(f".{path.name}.link-{uuid.uuid4().hex[:8]}")
    os.symlink(relative, fresh)
    os.replace(fresh, path)


def missing(artifacts: str | Path) -> list[Path]:
    """The links in `artifacts` whose stored job is gone (the store was emptied or moved)."""
    paths = (Path(root) / name for root, dirs, files in os.walk(artifacts) for name in dirs + files)
    return [path for path in paths if path.is_symlink() and not path.exists()]
