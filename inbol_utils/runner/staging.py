"""A stage changes its artifacts completely or not at all.

Before a stage runs, the runner keeps a snapshot of the artifacts folder beside it: a copy of
the folder tree whose files are hard links to the same files, so taking it costs one link per
file, not a copy of every model and dataset. The stage then works in the folder itself, under
its own path (so recipes, messages and the executed notebook name the real folder). Nothing in
the package modifies a file in place: every write makes a new file and renames it over the old
one (`artifacts.atomic_file`, `atomic_dir`), so the snapshot's files keep their bytes whatever
the stage writes. If the stage fails, the folder it left is swapped for the snapshot
(`restore`); if it succeeds, the snapshot is dropped (`drop`). A runner killed mid-stage leaves
the snapshot behind, and the next run restores it before anything else.

One runner at a time works on a folder (`held`): a second one stops before it touches anything,
so it can neither restore the snapshot of a stage that is still running nor take one of its own.
The lock is the operating system's (`flock`) on a hidden sibling file, so it ends with the
process that holds it however that process ends; a runner that was killed leaves only its
record in the file, which the next runner names as it takes the folder over.

A file written in place would defeat the snapshot, so it records every file's size and
modification time, and `drop` returns the files that changed under the same inode: the runner
reports them, and the smoke test asserts there are none.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

STATE = "stage.json"


def snapshot_dir(artifacts: str | os.PathLike) -> Path:
    """Where the snapshot of `artifacts` lives while a stage runs: a hidden sibling, on the
    same file system (hard links and renames need that)."""
    artifacts = Path(artifacts)
    return artifacts.with_name(f".{artifacts.name}.before-stage")


class InUse(RuntimeError):
    """Another runner holds the artifacts folder (`held`)."""


def lock_path(artifacts: str | os.PathLike) -> Path:
    """The lock file of `artifacts` (`held`): a hidden sibling, like the snapshot, so that no
    snapshot copies it and no restore replaces it."""
    artifacts = Path(artifacts)
    return artifacts.with_name(f".{artifacts.name}.lock")


@contextmanager
def held(artifacts: str | os.PathLike) -> Iterator[str | None]:
    """Hold `artifacts` for this process alone while the block runs, or raise InUse, in one line
    that names the holder, having changed nothing. Yields the holder that a runner killed while
    holding it left in the lock file ("PID 1234, started ..."; None if none): its unfinished
    stage, if any, is for `restore` to undo. The file is emptied on release, not removed, so
    that a runner about to lock it never locks a file that is no longer the lock."""
    path = lock_path(artifacts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:  # made if missing, never emptied by opening it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # let go when the file closes or the process ends
        except BlockingIOError:
            who = holder(handle)
            raise InUse(f"{artifacts} is in use by another runner{f' ({who})' if who else ''}; nothing "
                        f"was touched. Wait for it, or stop it first.") from None
        left = holder(handle)
        handle.truncate(0)
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        try:
            yield left
        finally:
            handle.truncate(0)


def holder(handle: IO[str]) -> str | None:
    """The holder an open lock file names, in words (None if it names none): its PID and start,
    and its host when that is another machine (whose PIDs mean nothing here)."""
    handle.seek(0)
    try:
        record = json.loads(handle.read())
        host = "" if record["host"] == socket.gethostname() else f" on {record['host']}"
        return f"PID {record['pid']}{host}, started {record['started']}"
    except (ValueError, KeyError, TypeError):  # empty: nobody holds it, or its holder let go
        return None


def _files(folder: Path) -> dict[str, list[int]]:
    """Every file under `folder` with its size and modification time (ns)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            info = path.lstat()
            found[str(path.relative_to(folder))] = [info.st_size, info.st_mtime_ns]
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def take(artifacts: str | os.PathLike, stage: str) -> None:
    """Snapshot `artifacts` (which may not exist yet) before `stage` runs. The snapshot is
    built under a temporary name and renamed into place when complete, so a snapshot that
    exists is always whole."""
    artifacts, final = Path(artifacts), snapshot_dir(artifacts)
    if final.exists():
        raise RuntimeError(f"{final} exists: an earlier stage did not finish; `restore` first.")
    building = final.with_name(final.name + ".tmp")
    _remove(building)
    building.mkdir(parents=True)
    existed = artifacts.is_dir()
    if existed:
        shutil.copytree(artifacts, building / "before", symlinks=True, copy_function=os.link)
    state = {"stage": stage, "existed": existed, "files": _files(building / "before") if existed else {}}
    (building / STATE).write_text(json.dumps(state))
    os.replace(building, final)


def restore(artifacts: str | os.PathLike) -> tuple[str | None, list[str]]:
    """Put `artifacts` back as the snapshot has it and drop the snapshot. Returns the stage the
    snapshot was taken for (None if there was none) and the files that were written in place,
    whose old bytes are lost. Safe to repeat after a crash at any step: every step is a rename,
    and the snapshot is dropped last."""
    artifacts, snapshot = Path(artifacts), snapshot_dir(artifacts)
    _remove(snapshot.with_name(snapshot.name + ".tmp"))  # a snapshot never finished: artifacts untouched
    if not (snapshot / STATE).is_file():
        return None, []
    state = json.loads((snapshot / STATE).read_text())
    before = snapshot / "before"
    damaged = _changed(state, before)
    discard = artifacts.with_name(f".{artifacts.name}.discarded")
    if not state["existed"] or before.is_dir():  # else the snapshot is already back in place
        _remove(discard)
        if artifacts.exists():
            os.replace(artifacts, discard)
        if state["existed"]:
            os.replace(before, artifacts)
    _remove(discard)
    _drop_snapshot(snapshot)
    return state["stage"], damaged


def drop(artifacts: str | os.PathLike) -> list[str]:
    """The stage succeeded: drop the snapshot. Returns the files that were written in place,
    which a failure could not have undone."""
    snapshot = snapshot_dir(artifacts)
    changed = _changed(json.loads((snapshot / STATE).read_text()), snapshot / "before")
    _drop_snapshot(snapshot)
    return changed


def _changed(state: dict, before: Path) -> list[str]:
    """The snapshot's files whose size or time changed: they share their inode with the
    artifacts folder, so only a write in place can change them."""
    now = _files(before) if before.is_dir() else {}
    return sorted(name for name, stat in state["files"].items() if name in now and now[name] != stat)


def _drop_snapshot(snapshot: Path) -> None:
    """Rename first, then delete: a crash while deleting must not leave half a snapshot that
    the next run would take for a whole one."""
    dropped = snapshot.with_name(snapshot.name + ".dropped")
    _remove(dropped)
    os.replace(snapshot, dropped)
    shutil.rmtree(dropped)
