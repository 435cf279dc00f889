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
import io
import json
import pickle
import tokenize
import uuid
from pathlib import Path
from typing import Callable, TypeVar

from . import profiling
from ..artifacts import atomic_file

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # inbol_utils/
T = TypeVar("T")


# Code that presents results (prose phrases, figures, cost estimates, two runs compared), runs
# the notebooks (runner, parameter checks, staging, time records) or measures (tools): no job's
# result depends on it, so editing the book's prose reruns the notebooks (their stamps hash all
# of the package) but retrains nothing. A folder here leaves out everything in it.
PRESENTATION = ("book", "tools", "replication.py", "runner/parameters.py", "runner/pipeline.py",
                "runner/profiling.py", "runner/staging.py", "runner/warm_kernel.py")


def modules(leave_out: tuple[str, ...] = ()) -> list[Path]:
    """The package's modules but `leave_out` (paths relative to the package, or whole folders)."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = path.relative_to(PACKAGE_DIR).as_posix()
        if name not in leave_out and name.split("/")[0] not in leave_out:
            found.append(path)
    return found


def code_digest(leave_out: tuple[str, ...] = ()) -> str:
    """Hash the code of the package's modules but `leave_out`: the notebooks and jobs run it, so
    a change there can change results. The code, not the text (`_code_of`): editing a comment
    or a docstring reruns and retrains nothing."""
    h = hashlib.sha256()
    for path in modules(leave_out):
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + _code_of(path.read_bytes()) + b"\0")
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
