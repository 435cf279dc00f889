"""The snapshot that makes a stage all-or-nothing (inbol_utils.runner.staging), without a kernel:
changes undone, a crash at any step of the restore undone by the next restore, writes in place
reported; and the lock that lets one runner at a time work on a folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from inbol_utils.runner import staging
from inbol_utils.artifacts import atomic_dir, atomic_file, write_json


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def artifacts_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts"
    (folder / "seed0" / "base_model").mkdir(parents=True)
    (folder / "seed0" / "base_model" / "model.safetensors").write_bytes(os.urandom(1 << 16))
    (folder / "training.json").write_text('{"seeds": [0]}')
    (folder / "results").mkdir()
    (folder / "results" / "per_seed.csv").write_text("method,seed\n")
    return folder


def change_as_a_stage_does(folder: Path) -> None:
    """Replace, delete and add files and folders, the way the package writes."""
    with atomic_dir(folder / "seed0" / "base_model") as tmp:
        (tmp / "model.safetensors").write_bytes(b"retrained")
    write_json(folder / "training.json", {"seeds": [0, 1]})
    (folder / "results" / "per_seed.csv").unlink()
    with atomic_file(folder / "results" / "main_table.csv") as handle:
        handle.write("new")
    (folder / "seed1").mkdir()


def test_a_failed_stage_gets_the_folder_back_exactly(tmp_path):
    folder = artifacts_folder(tmp_path)
    before = tree(folder)
    staging.take(folder, "03_training")
    assert staging.snapshot_dir(folder).is_dir()
    change_as_a_stage_does(folder)
    assert staging.restore(folder) == ("03_training", [])
    assert tree(folder) == before and not (folder / "seed1").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]  # no snapshot, no leftovers
    assert staging.restore(folder) == (None, [])


def test_a_stage_that_succeeds_keeps_its_changes(tmp_path):
    folder = artifacts_folder(tmp_path)
    staging.take(folder, "03_training")
    change_as_a_stage_does(folder)
    after = tree(folder)
    assert staging.drop(folder) == []
    assert tree(folder) == after and sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


def test_a_folder_that_did_not_exist_is_removed_again(tmp_path):
    folder = tmp_path / "artifacts"
    staging.take(folder, "00_world_and_base_model")
    artifacts_folder(tmp_path)
    staging.restore(folder)
    assert not folder.exists()


def test_a_crash_at_any_step_of_the_restore_is_finished_by_the_next(tmp_path):
    """Killed after moving the stage's folder aside, or after moving the snapshot into place:
    the next restore (the runner's first act) ends with the folder as before."""
    folder = artifacts_folder(tmp_path)
    before = tree(folder)
    snapshot = staging.snapshot_dir(folder)
    staging.take(folder, "02_data_generation")
    change_as_a_stage_does(folder)
    os.replace(folder, folder.with_name(".artifacts.discarded"))  # the first rename, then killed
    assert staging.restore(folder)[0] == "02_data_generation" and tree(folder) == before

    staging.take(folder, "02_data_generation")
    change_as_a_stage_does(folder)
    os.replace(folder, folder.with_name(".artifacts.discarded"))
    os.replace(snapshot / "before", folder)  # both renames, then killed before the snapshot went
    assert staging.restore(folder)[0] == "02_data_generation" and tree(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]


def test_writes_in_place_are_named_because_they_cannot_be_undone(tmp_path):
    """The snapshot's files are the folder's files (hard links): a write in place changes both."""
    folder = artifacts_folder(tmp_path)
    staging.take(folder, "04_evaluation")
    with open(folder / "training.json", "a") as handle:
        handle.write(" ")
    assert staging.drop(folder) == ["training.json"]
    staging.take(folder, "04_evaluation")
    (folder / "results" / "per_seed.csv").write_text("overwritten")
    assert staging.restore(folder) == ("04_evaluation", ["results/per_seed.csv"])
    assert (folder / "results" / "per_seed.csv").read_text() == "overwritten"  # lost, and said so


HOLD = """\
import sys
from inbol_utils.runner import staging
with staging.held(sys.argv[1]):
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_one_process_at_a_time_holds_a_folder_and_a_killed_holder_lets_go(tmp_path):
    """Another process holds the folder: `held` stops in one line naming it, having changed
    nothing. Killed (SIGKILL: no `finally` runs), it lets go all the same, and the next holder
    is told who it was."""
    folder = artifacts_folder(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline() == "holding\n"
        before, lock = tree(folder), staging.lock_path(folder).read_bytes()
        with pytest.raises(staging.InUse) as info:
            with staging.held(folder):
                pass
        assert str(info.value).startswith(f"{folder} is in use by another runner (PID {holder.pid}, started ")
        assert str(info.value).endswith("); nothing was touched. Wait for it, or stop it first.")
        assert tree(folder) == before and staging.lock_path(folder).read_bytes() == lock
    finally:
        holder.kill()
        holder.wait()
    with staging.held(folder) as left:
        assert left.startswith(f"PID {holder.pid}, started ")
        assert f'"pid": {os.getpid()},' in staging.lock_path(folder).read_text()
    assert staging.lock_path(folder).read_text() == ""  # let go: the next holder finds no one
    with staging.held(folder) as left:
        assert left is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".artifacts.lock", "artifacts"]
