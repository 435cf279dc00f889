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

A job answered from its record (`inbol_utils.runner.reuse`) does no work, but the book prices the
whole study from these counts (chapter 6), so its record keeps the seconds and tokens it took
when it ran (`work_since`), and a reuse counts them apart, as reused (`count_reused`): a rerun
after one changed parameter still accounts for all of the study's work, and for what it did
again.

The runner (`inbol_utils.runner.pipeline`) sets INBOL_PROFILE to a file per stage; the kernel then
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

# Seconds and tokens per part: of the work done in this process (and handed back by its
# workers), and of the work answered from records.
KINDS = ("seconds", "tokens", "reused seconds", "reused tokens")
_counts: dict[str, Counter] = {kind: Counter() for kind in KINDS}
_seconds, _tokens = _counts["seconds"], _counts["tokens"]
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


def counts() -> dict[str, dict]:
    """This process's totals so far: seconds and tokens per part, done and reused."""
    return {kind: dict(counter) for kind, counter in _counts.items()}


def take() -> dict[str, dict]:
    """This process's totals since the last `take` (`counts`), which starts them again from zero."""
    totals = counts()
    for counter in _counts.values():
        counter.clear()
    return totals


def add(totals: dict[str, dict]) -> None:
    """Count another process's totals (a parallel worker's `take`) as this process's own."""
    for kind, counter in _counts.items():
        counter.update(totals.get(kind, {}))
    _write()


def work_since(before: dict[str, dict]) -> dict[str, dict]:
    """The seconds and tokens per part spent since `before` (`counts`), done or reused: one
    job's work, for its record (`inbol_utils.runner.reuse`)."""
    now = counts()

    def spent(kind: str, name: str) -> float:
        return sum(now[k].get(name, 0) - before[k].get(name, 0) for k in (kind, f"reused {kind}"))

    return {kind: {name: amount for name in set(now[kind]) | set(now[f"reused {kind}"])
                   if (amount := spent(kind, name))} for kind in ("seconds", "tokens")}


def count_reused(work: dict[str, dict]) -> None:
    """Count a job's recorded work (`work_since`) as reused: answered from its record, not done."""
    _counts["reused seconds"].update(work.get("seconds", {}))
    _counts["reused tokens"].update(work.get("tokens", {}))
    _write()


def stop_writing() -> None:
    global _writes
    _writes = False


def _write() -> None:
    path = os.environ.get(ENV)
    if path and _writes:
        Path(path).write_text(json.dumps(counts()))


def read(path: str | Path, kind: str = "seconds") -> dict[str, float]:
    """One kind of a stage's totals (`counts`) as the kernel left them ({} when it recorded none):
    "seconds" or "tokens" (and rows) per part of the work done, "reused seconds" or "reused
    tokens" of the jobs answered from their records."""
    path = Path(path)
    return json.loads(path.read_text()).get(kind, {}) if path.is_file() else {}

