"""Atomic artifact writes and clear errors for missing inputs.

Every stage writes into a temporary sibling and renames it into place only when it is
complete, so an interrupted stage never leaves a file or folder a later stage would trust.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


class MissingArtifactError(FileNotFoundError):
    """An input that an earlier stage should have produced is not there."""


def require(path: str | os.PathLike, produced_by: str) -> Path:
    """Return `path` if it exists; otherwise stop with a message naming the stage to run."""
    path = Path(path)
    if not path.exists():
        raise MissingArtifactError(
            f"Missing artifact {path}. It is written by {produced_by}; run that stage first "
            f"(e.g. `make book`, or papermill on that notebook with the same `artifacts` parameter)."
        )
    return path


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `final` in one rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.is_symlink():  # a link into the job store: replaced, never written through
            final.unlink()
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file for writing; on success it replaces `final` in one rename."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_file(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, default=float)


def read_json(path: str | os.PathLike, produced_by: str) -> Any:
    with open(require(path, produced_by)) as handle:
        return json.load(handle)
