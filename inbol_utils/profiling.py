"""Where a stage's time goes: seconds spent in each part of the work, in every process.

The expensive calls of the package mark themselves with `part(name)`: training steps, greedy
answers, sampling, likelihoods, data building. A part's time is the CPU time of its process
(`time.process_time`, every thread counted), exclusive (a validation probe inside a training
run counts as greedy answers, not as training) and summed over processes: parallel workers hand
their totals back with their results (`parallel.run`). So a part's figure is core-seconds,
comparable with the stage's wall time times the cores it had, even when three one-thread
workers share two cores.

Each part also counts what went through the model (`count_tokens`): the rows and tokens of
every batch encoded for a forward pass (a training batch, a prompt, a teacher-forced answer)
and, apart, the tokens generated one step at a time. These counts do not depend on the machine,
so they say what the same stage costs on another machine and at other sizes (`costs`).

The runner (`inbol_utils.pipeline`) sets INBOL_PROFILE to a file per stage; the kernel then
keeps that file up to date with its totals, and the runner folds it into <artifacts>/profile.json
beside the stage's wall time and papermill's per-cell times. Without the variable nothing is
written and a part costs two clock reads.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

PARTS = ("training", "greedy answers", "sampling", "likelihoods", "data building")
ENV = "INBOL_PROFILE"

DECODED, ROWS = " (decoded)", " (rows)"  # suffixes of a part's counts of generated tokens and of rows

_seconds: Counter = Counter()
_tokens: Counter = Counter()
_open: list[list] = []  # [name, start, seconds spent in nested parts] per open part
_writes = True  # parallel workers report to their parent instead of writing the file


@contextmanager
def part(name: str):
    if name not in PARTS:
        raise ValueError(f"unknown part {name!r}; parts are {PARTS}")
    entry = [name, time.process_time(), 0.0]
    _open.append(entry)
    try:
        yield
    finally:
        _open.pop()
        elapsed = time.process_time() - entry[1]
        _seconds[name] += elapsed - entry[2]
        if _open:
            _open[-1][2] += elapsed
        else:
            _write()


def count_tokens(n: int, rows: int = 0, decoded: bool = False) -> None:
    """Count `n` tokens in `rows` sequences for the innermost open part: through a forward pass,
    or `decoded` (generated one step at a time). Outside every part there is nothing to count
    them for."""
    if _open:
        name = _open[-1][0]
        _tokens[name + (DECODED if decoded else "")] += int(n)
        _tokens[name + ROWS] += int(rows)


def take() -> dict[str, dict]:
    """This process's totals since the last `take` (seconds and tokens per part), which
    starts them again from zero."""
    totals = {"seconds": dict(_seconds), "tokens": dict(_tokens)}
    _seconds.clear()
    _tokens.clear()
    return totals


def add(totals: dict[str, dict]) -> None:
    """Count another process's totals (a parallel worker's `take`) as this process's own."""
    _seconds.update(totals["seconds"])
    _tokens.update(totals["tokens"])
    _write()


def stop_writing() -> None:
    global _writes
    _writes = False


def _write() -> None:
    path = os.environ.get(ENV)
    if path and _writes:
        Path(path).write_text(json.dumps({"seconds": dict(_seconds), "tokens": dict(_tokens)}))


def read(path: str | Path) -> dict[str, float]:
    """A stage's seconds per part as the kernel left them ({} when it recorded none)."""
    path = Path(path)
    return json.loads(path.read_text())["seconds"] if path.is_file() else {}


def read_tokens(path: str | Path) -> dict[str, int]:
    """A stage's tokens and rows per part (`count_tokens`) as the kernel left them."""
    path = Path(path)
    return json.loads(path.read_text())["tokens"] if path.is_file() else {}


def machine() -> str:
    """The CPU and core count, for quoting a timing with the machine it came from."""
    from .environment import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores"
