"""Reuse of finished work: a job whose ingredients did not change is not run again.

The runner reruns a whole stage when anything it depends on changes, but most jobs inside a
stage depend on only part of it: a new tau relabels the data and leaves the probe of the base
model as it was; a new beta retrains the preference stage and leaves IDK-IT and its pairs.
So each expensive job records, beside its output, a *recipe*: a digest of its arguments, of
the recipes of the artifacts it reads and of the package's code, together with the value it
returned (`<output>.made`). Run again with the same recipe while its output is still there, the
job is answered from the record. Recipes chain through the inputs' recipes, not their bytes,
so checking costs no hashing of models or images; an input without a record (written by hand
or by an older version) has no recipe, and nothing made from it is ever reused.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import pickle
import uuid
from pathlib import Path
from typing import Callable, TypeVar

from . import profiling
from .artifacts import atomic_file

PACKAGE_DIR = Path(__file__).resolve().parent
T = TypeVar("T")


# Modules that present results (prose phrases, figures, cost estimates, benchmarks, two runs
# compared) or run the notebooks (runner, parameter checks, staging, time records): no job's
# result depends on them, so editing the book's prose reruns the notebooks (their stamps hash
# every module) but retrains nothing.
PRESENTATION = ("bench.py", "book.py", "costs.py", "parameters.py", "pipeline.py", "plots.py",
                "profile_book.py", "profiling.py", "replication.py", "staging.py", "warm_kernel.py",
                "zygote.py")


def code_digest(leave_out: tuple[str, ...] = ()) -> str:
    """Hash the code of inbol_utils/*.py but `leave_out`: the notebooks and jobs run it, so a
    change there can change results. The code, not the text (`_code_of`): editing a comment or
    a docstring reruns and retrains nothing."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.name not in leave_out:
            h.update(path.name.encode() + b"\0" + _code_of(path.read_bytes()) + b"\0")
    return h.hexdigest()


@functools.cache
def _code_of(source: bytes) -> bytes:
    """A module's syntax tree without its docstrings: what runs, whatever its comments, layout
    and docstrings say (only command-line help texts read a docstring, and no result reads
    those)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def recipe(**ingredients) -> str:
    """The digest of a job's ingredients (plain values and input recipes) and of the code its
    result can depend on (every module but `PRESENTATION`)."""
    text = json.dumps({**ingredients, "code": code_digest(PRESENTATION)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _record(output: Path) -> Path:
    return output.with_name(output.name + ".made")


def recipe_of(output: str | Path) -> str:
    """The recipe `output` was made from; a fresh random token if it has none (never matches)."""
    try:
        return pickle.loads(_record(Path(output)).read_bytes())["recipe"]
    except (OSError, pickle.UnpicklingError, KeyError, EOFError):
        return f"unrecorded-{uuid.uuid4().hex}"


def mark(output: str | Path, made_from: str, result=None, work: dict | None = None) -> None:
    """Record that `output` (now complete) was made from `made_from`, with the `work` it took
    (`profiling.work_since`; none for what is only copied or written beside it)."""
    with atomic_file(_record(Path(output)), "wb") as handle:
        pickle.dump({"recipe": made_from, "result": result, "work": work or {}}, handle)


def reuse(output: str | Path, made_from: str, make: Callable[[], T]) -> T:
    """`make()`, which writes `output`, unless `output` exists and was made from `made_from`:
    then the value `make` returned that time, and the work it took then counted as reused
    (`profiling.count_reused`). The record is removed before `make` starts and written after it
    returns, so an interrupted job is never taken for a finished one."""
    output = Path(output)
    record = _record(output)
    if output.exists() and record.is_file():
        try:
            saved = pickle.loads(record.read_bytes())
        except (pickle.UnpicklingError, EOFError):
            saved = {}
        if saved.get("recipe") == made_from:
            profiling.count_reused(saved.get("work", {}))
            return saved["result"]
    record.unlink(missing_ok=True)
    before = profiling.counts()
    result = make()
    mark(output, made_from, result, profiling.work_since(before))
    return result
