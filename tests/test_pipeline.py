"""The papermill runner (inbol_utils.runner.pipeline) and the book's table of contents per profile.

The runner tests use two throwaway notebooks, so they check the runner's contract (order,
skipping, downstream reruns, failures, one runner per folder, Ctrl-C) in seconds without
training anything.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_core.utils import ensure_event_loop, run_sync

from inbol_utils.runner import parameters, pipeline, staging
from inbol_utils.book import profile_book
from inbol_utils.runner.parameters import Param, Schema
from inbol_utils.runner.pipeline import PipelineError, main, run_pipeline

REPO = Path(__file__).resolve().parents[1]

WRITE_A = """\
from pathlib import Path
out = Path(artifacts); out.mkdir(parents=True, exist_ok=True)
(out / "a.txt").write_text(str(value))
with open(out / "order.txt", "a") as f:
    f.write("a\\n")
"""
READ_A_WRITE_B = """\
from pathlib import Path
out = Path(artifacts)
(out / "b.txt").write_text((out / "a.txt").read_text() + suffix)
with open(out / "order.txt", "a") as f:
    f.write("b\\n")
"""


def make_notebook(path: Path, parameters: str, body: str) -> Path:
    """Write a notebook with a `parameters`-tagged cell followed by one code cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


def write_params(path: Path, artifacts: Path, stages: list[dict], **extra) -> Path:
    path.write_text(yaml.safe_dump({"artifacts": str(artifacts), "common": {"seed": 0},
                                    "stages": stages, **extra}))
    return path


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and modification time: "unchanged" means this."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def study(tmp_path, monkeypatch):
    """Two stages (a writes a.txt, b reads it and writes b.txt) and their parameter file.

    The code digest is pinned, so that another engineer saving a file in inbol_utils/ while the
    tests run cannot turn a "skipped" into a "ran". The two notebooks get their schemas.
    """
    monkeypatch.setattr(pipeline, "code_digest", lambda: "pinned")
    monkeypatch.setitem(parameters.SCHEMAS, "a", Schema({
        "artifacts": parameters.ARTIFACTS, "value": Param("int", "a's number", low=0),
        "seed": Param("int", "a seed", low=0)}))
    monkeypatch.setitem(parameters.SCHEMAS, "b", Schema({
        "artifacts": parameters.ARTIFACTS, "suffix": Param("text", "b's suffix")}))
    a = make_notebook(tmp_path / "a.ipynb", 'artifacts = ""\nvalue = 1\nseed = 0', WRITE_A)
    b = make_notebook(tmp_path / "b.ipynb", 'artifacts = ""\nsuffix = "!"', READ_A_WRITE_B)
    art = tmp_path / "art"
    stages = [{"notebook": str(a), "parameters": {"value": 1}},
              {"notebook": str(b), "parameters": {}}]
    params = write_params(tmp_path / "params.yaml", art, stages)
    return {"root": tmp_path, "params": params, "art": art, "stages": stages,
            "executed": tmp_path / "executed"}


def statuses(records: list[dict]) -> list[str]:
    return [r["status"] for r in records]


def test_stages_run_in_order_and_write_executed_notebooks(study):
    records = run_pipeline(study["params"], study["executed"])
    assert statuses(records) == ["ran", "ran"]
    assert (study["art"] / "order.txt").read_text() == "a\nb\n"
    assert (study["art"] / "b.txt").read_text() == "1!"
    for stem in ("a", "b"):
        executed = nbformat.read(study["executed"] / f"{stem}.ipynb", as_version=4)
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
        assert (study["art"] / ".stamps" / f"{stem}.json").is_file()
    assert not pipeline.partial_notebook(study["art"], "a").parent.exists()


def test_second_run_skips_everything(study):
    run_pipeline(study["params"], study["executed"])
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "skipped"]
    assert (study["art"] / "order.txt").read_text() == "a\nb\n"


def test_changed_parameter_reruns_its_stage_and_everything_downstream(study):
    run_pipeline(study["params"], study["executed"])
    study["stages"][0]["parameters"]["value"] = 2
    write_params(study["params"], study["art"], study["stages"])
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["ran", "ran"]
    assert (study["art"] / "b.txt").read_text() == "2!"
    # A change in the last stage reruns only that stage.
    study["stages"][1]["parameters"]["suffix"] = "?"
    write_params(study["params"], study["art"], study["stages"])
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "ran"]
    assert (study["art"] / "b.txt").read_text() == "2?"


def test_a_notebook_saved_in_jupyter_stays_current_until_its_cells_change(study):
    """Opening, running and saving a notebook changes its outputs, counts and metadata, not what
    it says: the stage stays current. A changed cell, code or prose, reruns it."""
    run_pipeline(study["params"], study["executed"])
    path = study["root"] / "b.ipynb"
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    for count, cell in enumerate(notebook.cells, 1):
        cell.metadata["execution"] = {"iopub.status.busy": "2026-12-05T12:00:00"}
        if cell.cell_type == "code":
            cell.execution_count = count
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran by hand\n")]
    nbformat.write(notebook, path)
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "skipped"]
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell("A sentence of the chapter."))
    nbformat.write(notebook, path)
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "ran"]
    notebook.cells[-1].source += "\nprint('one more line')"
    nbformat.write(notebook, path)
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "ran"]


def test_code_change_or_missing_executed_notebook_reruns(study, monkeypatch):
    run_pipeline(study["params"], study["executed"])
    (study["executed"] / "b.ipynb").unlink()
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "ran"]
    monkeypatch.setattr(pipeline, "code_digest", lambda: "edited")
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["ran", "ran"]


def test_force_and_only(study):
    run_pipeline(study["params"], study["executed"])
    records = run_pipeline(study["params"], study["executed"], force=True, only=["b"])
    assert statuses(records) == ["not selected", "ran"]
    # Running b alone on a stale a must not stamp b: a full run must redo both.
    study["stages"][0]["parameters"]["value"] = 5
    write_params(study["params"], study["art"], study["stages"])
    run_pipeline(study["params"], study["executed"], only=["b"])
    assert not (study["art"] / ".stamps" / "b.json").exists()
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["ran", "ran"]
    with pytest.raises(PipelineError, match="'c'"):
        run_pipeline(study["params"], study["executed"], only=["c"])


def test_published_figures_are_labelled_once_per_profile_and_chapter():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("plot()", metadata={"mystnb": {"figure": {"caption": "One."}}}),
        nbformat.v4.new_code_cell("table"),
        nbformat.v4.new_code_cell("plot()", metadata={"mystnb": {"figure": {"caption": "Two."}, "image": {"alt": "a"}}})])
    pipeline.label_figures(notebook, "easy_vqa-04_evaluation")
    names = [c.metadata.get("mystnb", {}).get("figure", {}).get("name") for c in notebook.cells]
    assert names == ["easy_vqa-04_evaluation-fig1", None, "easy_vqa-04_evaluation-fig2"]


def test_rerun_from_reruns_a_current_stage_and_what_follows(study):
    """`make chapter CH=...`: the chapter and every later one run again even when current."""
    run_pipeline(study["params"], study["executed"])
    assert statuses(run_pipeline(study["params"], study["executed"], rerun_from="b")) == ["skipped", "ran"]
    assert statuses(run_pipeline(study["params"], study["executed"], rerun_from="a")) == ["ran", "ran"]
    with pytest.raises(PipelineError, match="names no stage"):
        run_pipeline(study["params"], study["executed"], rerun_from="c")
    stems = ["00_world_and_base_model", "01_boundary_definition", "03_training"]
    assert pipeline.rerun_index(stems, "03", "p.yaml") == pipeline.rerun_index(stems, "03_training", "p.yaml") == 2
    assert pipeline.rerun_index(stems, "3", "p.yaml") == 2  # make chapter CH=3


def test_failing_stage_stops_with_a_clear_message_and_no_stamp(study, capsys):
    fail = make_notebook(study["root"] / "a.ipynb", 'artifacts = ""\nvalue = 1\nseed = 0',
                         'raise ValueError("the world is flat")')
    assert fail.is_file()
    with pytest.raises(PipelineError) as info:
        run_pipeline(study["params"], study["executed"])
    message = str(info.value)
    assert "Stage a failed" in message and "ValueError" in message
    assert "the world is flat" in message and "as they were before the stage" in message
    partial = pipeline.partial_notebook(study["art"], "a")
    assert str(partial) in message and partial.is_file()
    assert partial.parent != study["executed"] and not list(study["executed"].iterdir())
    assert not study["art"].exists()  # there was no artifacts folder before the stage
    assert not staging.snapshot_dir(study["art"]).exists()

    # The command line reports the same and exits 1.
    assert main([str(study["params"]), "--executed-dir", str(study["executed"])]) == 1
    assert "Stage a failed" in capsys.readouterr().err


FAIL_MIDWAY = """\
import os
from pathlib import Path
from inbol_utils.artifacts import write_json
out = Path(artifacts)
write_json(out / "b.txt", "half")                       # an old file replaced
write_json(out / "a.json", {"value": "changed"})        # another
(out / "c.txt").write_text("new")                       # a new file
(out / "keep.txt").unlink()                             # an old file deleted
(out / "models" / "m" / "weights.bin").unlink()
(out / "models" / "new").mkdir()                        # a new folder
raise RuntimeError("the disk is full")
"""


def test_a_stage_failing_midway_leaves_every_artifact_as_before(study):
    """Stage b changes, adds and deletes artifacts, then fails: the folder is restored exactly
    (bytes and modification times), stamps and profile included, and the book keeps b's last
    good notebook."""
    run_pipeline(study["params"], study["executed"])
    art = study["art"]
    (art / "keep.txt").write_text("keep me")
    (art / "a.json").write_text('{"value": "old"}')
    (art / "models" / "m").mkdir(parents=True)
    (art / "models" / "m" / "weights.bin").write_bytes(b"\0" * 4096)
    before, chapter = tree(art), (study["executed"] / "b.ipynb").read_bytes()
    make_notebook(study["root"] / "b.ipynb", 'artifacts = ""\nsuffix = "!"', FAIL_MIDWAY)
    with pytest.raises(PipelineError, match="the disk is full"):
        run_pipeline(study["params"], study["executed"])
    assert tree(art) == before
    assert (study["executed"] / "b.ipynb").read_bytes() == chapter
    assert not staging.snapshot_dir(art).exists()
    assert "half" not in (art / "b.txt").read_text()


def test_a_run_after_a_crash_first_restores_the_artifacts(study, monkeypatch, capsys):
    """A runner killed mid-stage leaves its snapshot; the next run puts it back before anything
    else (here, before stopping on b's missing input, so no kernel starts)."""
    art = study["art"]
    art.mkdir()
    (art / "a.txt").write_text("1")
    before = tree(art)
    staging.take(art, "b")
    (art / "a.txt").unlink()
    (art / "stray.txt").write_text("half-written")
    monkeypatch.setitem(parameters.SCHEMAS, "b", Schema(parameters.SCHEMAS["b"].params,
                                                        inputs=(parameters.Input("never.txt", "nobody"),)))
    with pytest.raises(PipelineError, match="b: missing artifact"):
        run_pipeline(study["params"], study["executed"], only=["b"])
    assert f"restored {art} as it was before stage b, which did not finish" in capsys.readouterr().out
    assert tree(art) == before and not staging.snapshot_dir(art).exists()


def test_files_written_in_place_are_reported(study):
    """The snapshot shares its files with the folder: a stage that writes one in place (instead
    of replacing it) could not be undone, so the runner names it, and says so on a failure."""
    study["art"].mkdir()
    (study["art"] / "a.txt").write_text("1")
    make_notebook(study["root"] / "b.ipynb", 'artifacts = ""\nsuffix = "!"',
                  'open(artifacts + "/a.txt", "a").write("more")')
    records = run_pipeline(study["params"], study["executed"], only=["b"])
    assert records[1]["written_in_place"] == ["a.txt"]
    make_notebook(study["root"] / "b.ipynb", 'artifacts = ""\nsuffix = "?"',
                  'open(artifacts + "/a.txt", "a").write("more")\nraise ValueError("no")')
    with pytest.raises(PipelineError, match=r"Except \['a.txt'\]: the stage wrote them in place"):
        run_pipeline(study["params"], study["executed"], only=["b"])


WRITE_RESULTS = """\
from pathlib import Path
results = Path(artifacts) / "results"; results.mkdir(parents=True, exist_ok=True)
for name in names:
    (results / f"{name}.csv").write_text(f"{name},{suffix}\\n")
(results / "notes.json").write_text("{}")
if suffix == "fail":
    raise RuntimeError("the disk is full")
"""


def results_stage(study, monkeypatch, names: list[str], suffix: str) -> None:
    """Stage b becomes one that writes results/<name>.csv for each name (and a JSON file)."""
    make_notebook(study["root"] / "b.ipynb", f'artifacts = ""\nsuffix = {suffix!r}\nnames = {names!r}',
                  WRITE_RESULTS)
    monkeypatch.setitem(parameters.SCHEMAS, "b", Schema({
        "artifacts": parameters.ARTIFACTS, "suffix": Param("text", "b's suffix"),
        "names": Param("text", "results to write", many=True)}))


def test_results_csvs_are_mirrored_beside_the_chapters(study, monkeypatch):
    """The chapters link <executed>/results/*.csv as downloads: after each stage that folder is a
    complete copy of the artifacts' results CSVs, of one state of them, never a mix."""
    results_stage(study, monkeypatch, ["main", "per_seed"], "one")
    run_pipeline(study["params"], study["executed"])
    copy = study["executed"] / "results"
    assert tree(copy).keys() == {"main.csv", "per_seed.csv"}  # CSVs only, as the chapters link them
    assert (copy / "main.csv").read_text() == "main,one\n" and oct(copy.stat().st_mode)[-3:] == "755"

    # A failed stage restores the artifacts and leaves the book's set as it was.
    before = tree(copy)
    results_stage(study, monkeypatch, ["main"], "fail")
    with pytest.raises(PipelineError, match="the disk is full"):
        run_pipeline(study["params"], study["executed"])
    assert tree(copy) == before

    # A copy cut short (here after its first file) leaves the old set whole, and no temporary folder.
    (study["art"] / "results" / "main.csv").write_text("main,two\n")
    with monkeypatch.context() as patch:
        copied, real_copy = [], shutil.copyfile
        def copy_once(source, target):
            if copied:
                raise OSError("no space left on device")
            copied.append(real_copy(source, target))
        patch.setattr(pipeline.shutil, "copyfile", copy_once)
        with pytest.raises(OSError, match="no space"):
            pipeline.publish_results(study["art"], study["executed"])
    assert tree(copy) == before
    assert sorted(p.name for p in study["executed"].iterdir()) == ["a.ipynb", "b.ipynb", "results"]

    # The next run mirrors the new set (per_seed.csv gone from the artifacts, gone from the book),
    # and a book folder made afresh gets its copy even when every stage is skipped.
    results_stage(study, monkeypatch, ["main"], "two")
    shutil.rmtree(study["art"] / "results")
    run_pipeline(study["params"], study["executed"])
    assert {name: data for name, (data, _) in tree(copy).items()} == {"main.csv": b"main,two\n"}
    shutil.rmtree(copy)
    assert statuses(run_pipeline(study["params"], study["executed"])) == ["skipped", "skipped"]
    assert {name: data for name, (data, _) in tree(copy).items()} == {"main.csv": b"main,two\n"}
    assert pipeline.publish_results(study["art"], study["executed"]) is False  # unchanged: left alone


# ----------------------------------------------------------------------------------------------
# one runner per folder, and Ctrl-C


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_second_runner_stops_in_one_line_and_touches_nothing(study, capsys):
    """The first runner (this test, holding the lock) is in the middle of stage b: a second one
    must not undo b's work (alone, its first act would be to restore b's snapshot), nor make its
    book folder. It stops in one line that names the first."""
    run_pipeline(study["params"], study["executed"])
    art, fresh = study["art"], study["root"] / "fresh"
    with staging.held(art):
        staging.take(art, "b")
        (art / "c.txt").write_text("half-written")
        before = tree(art), listing(study["root"]), tree(study["executed"])
        with pytest.raises(PipelineError) as info:
            run_pipeline(study["params"], fresh)
        assert re.fullmatch(rf"{re.escape(str(art))} is in use by another runner \(PID {os.getpid()}, started "
                            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\); nothing was touched\. Wait for it, or stop it first\.",
                            str(info.value))
        capsys.readouterr()
        assert main([str(study["params"]), "--executed-dir", str(fresh)]) == 1
        assert capsys.readouterr().err == f"pipeline stopped: {info.value}\n"
        assert (tree(art), listing(study["root"]), tree(study["executed"])) == before
        assert staging.snapshot_dir(art).is_dir() and not fresh.exists()


def test_a_killed_runners_lock_is_taken_over_and_its_stage_undone(study, capsys):
    """A runner killed in the middle of stage b left its record in the lock file, and b's
    snapshot: the next run says whose lock it takes over, puts the folder back, and runs."""
    run_pipeline(study["params"], study["executed"])
    art = study["art"]
    killed = subprocess.Popen(["true"])
    killed.wait()
    staging.lock_path(art).write_text(json.dumps({"pid": killed.pid, "host": socket.gethostname(),
                                                  "started": "2025-01-02 08:15:02"}))
    staging.take(art, "b")
    (art / "c.txt").write_text("half-written")
    capsys.readouterr()
    records = run_pipeline(study["params"], study["executed"], force=True, only=["b"])
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"{art} was held by a runner that ended without letting go (PID {killed.pid}, started "
        f"2025-01-02 08:15:02); taking it over",
        f"restored {art} as it was before stage b, which did not finish"]
    assert statuses(records) == ["not selected", "ran"]
    assert not (art / "c.txt").exists() and (art / "order.txt").read_text() == "a\nb\nb\n"
    assert staging.lock_path(art).read_text() == ""  # let go


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt in this process, as in a terminal, whatever the test
    runner set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigterm():
    """SIGTERM at its default, as in a terminal, whatever the test runner set."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def started(monkeypatch):
    """The kernels that a run starts, to check that it stopped them all."""
    found = {"kernels": []}
    start = pipeline.start_kernel

    def record(*args):
        found["kernels"].append(start(*args))
        return found["kernels"][-1]

    monkeypatch.setattr(pipeline, "start_kernel", record)
    return found


def ctrl_c_now(*args) -> None:
    """Stands for a Ctrl-C that arrives as the function it replaces is called."""
    raise KeyboardInterrupt


def all_stopped(found: dict) -> bool:
    return not any(run_sync(k.manager.is_alive)() for k in found["kernels"])


CTRL_C = """\
import os, signal, time
from pathlib import Path
(Path(artifacts) / "c.txt").write_text("half-written")
os.kill(runner, signal.SIGINT)  # Ctrl-C reaches the runner while this cell runs
time.sleep(60)
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_during_a_stage_prints_one_line_and_undoes_it(study, monkeypatch, capfd, ctrl_c, sigterm, started,
                                                             signal_name):
    """A real SIGINT to the runner while b's cell runs: the kernels are stopped, the folder put
    back, and nothing but one line is printed (the kernels' output included), exit status 130.
    SIGTERM (`kill`, `timeout`) the same: it used to end the runner alone, leaving the kernels'
    workers training, orphaned."""
    run_pipeline(study["params"], study["executed"])
    art = study["art"]
    before = tree(art)
    make_notebook(study["root"] / "b.ipynb", 'artifacts = ""\nsuffix = "!"\nrunner = 0',
                  CTRL_C.replace("SIGINT", signal_name))
    monkeypatch.setitem(parameters.SCHEMAS, "b", Schema({
        "artifacts": parameters.ARTIFACTS, "suffix": Param("text", "b's suffix"),
        "runner": Param("int", "the runner's PID", low=0)}))
    study["stages"][1]["parameters"]["runner"] = os.getpid()
    write_params(study["params"], art, study["stages"])
    capfd.readouterr()
    assert main([str(study["params"]), "--executed-dir", str(study["executed"])]) == 130
    out, err = capfd.readouterr()
    assert err == f"pipeline interrupted during stage b: {art} is as it was before that stage.\n"
    assert "Traceback" not in out and "ERROR" not in out
    assert tree(art) == before and not staging.snapshot_dir(art).exists()
    assert started["kernels"] and all_stopped(started)
    assert staging.lock_path(art).read_text() == ""
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the run put it back


def test_ctrl_c_while_kernels_start_or_between_stages_says_what_the_folder_holds(study, monkeypatch,
                                                                                 capsys, started):
    """Ctrl-C as the next stage's kernel starts (a's kernel is up): a is undone. Ctrl-C after b
    finished, before its chapter is published: b's work is kept, unstamped, so the next run
    repeats it. Every kernel is stopped either way."""
    art = study["art"]
    start_kernel = pipeline.start_kernel

    def second_start_interrupted(artifacts, stage):
        return (ctrl_c_now if started["kernels"] else start_kernel)(artifacts, stage)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "start_kernel", second_start_interrupted)
        assert main([str(study["params"]), "--executed-dir", str(study["executed"])]) == 130
    assert capsys.readouterr().err == f"pipeline interrupted during stage a: {art} is as it was before that stage.\n"
    assert not art.exists() and len(started["kernels"]) == 1 and all_stopped(started)

    run_pipeline(study["params"], study["executed"])
    study["stages"][1]["parameters"]["suffix"] = "?"
    write_params(study["params"], art, study["stages"])
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "publish", ctrl_c_now)
        assert main([str(study["params"]), "--executed-dir", str(study["executed"])]) == 130
    assert capsys.readouterr().err == (f"pipeline interrupted between stages, after b: {art} keeps what the "
                                       f"stages up to b wrote.\n")
    assert (art / "b.txt").read_text() == "1?" and not (art / ".stamps" / "b.json").exists()
    assert all_stopped(started)


def test_a_ctrl_c_waits_for_a_block_that_must_finish(ctrl_c):
    """A kernel being started or stopped, a folder being put back: Ctrl-C takes effect after."""
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with pipeline.ctrl_c_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)
    assert finished == [True] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_stops_any_stage_as_ctrl_c_does_and_is_put_back_after(ctrl_c, sigterm):
    """Each stage's wait on papermill takes Ctrl-C and SIGTERM through asyncio, which puts SIGTERM
    back to its default when done: a SIGTERM in the second stage ended the runner alone."""
    loop = ensure_event_loop()
    with pipeline.terminate_as_ctrl_c():
        with pipeline.ctrl_c_cancels(loop):  # a first stage
            pass
        with pytest.raises(KeyboardInterrupt):
            with pipeline.ctrl_c_cancels(loop):  # the second: SIGTERM while papermill waits on the kernel
                os.kill(os.getpid(), signal.SIGTERM)
                loop.run_until_complete(asyncio.sleep(10))
        assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_profiles_get_their_own_executed_notebooks(study):
    assert pipeline.default_executed_dir("params/smoke.yaml") == REPO / "book" / "executed" / "smoke"
    assert pipeline.default_executed_dir(study["params"]).name == "params"
    partial = pipeline.partial_notebook(study["art"], "a")
    assert partial == study["art"].with_name("art.partial") / "a.ipynb"


def test_missing_notebook_is_named(study):
    study["stages"][1]["notebook"] = str(study["root"] / "nowhere.ipynb")
    write_params(study["params"], study["art"], study["stages"])
    with pytest.raises(PipelineError, match="nowhere.ipynb not found") as info:
        run_pipeline(study["params"], study["executed"])
    assert "05_label_noise.ipynb, 06_scaling_up.ipynb." in str(info.value)  # a copy's renamed chapter: what exists
    assert not study["executed"].exists() or not list(study["executed"].iterdir())


def test_unknown_keys_and_empty_stages_are_named(study, tmp_path):
    write_params(study["params"], study["art"], study["stages"], stagse=[])
    with pytest.raises(PipelineError, match="unknown top-level key 'stagse'"):
        run_pipeline(study["params"], study["executed"])
    write_params(study["params"], study["art"], [{"notebook": "x.ipynb", "params": {}}])
    with pytest.raises(PipelineError, match="unknown key 'params'"):
        run_pipeline(study["params"], study["executed"])
    write_params(study["params"], study["art"], [])
    with pytest.raises(PipelineError, match="non-empty list"):
        run_pipeline(study["params"], study["executed"])
    with pytest.raises(PipelineError, match="not found"):
        run_pipeline(tmp_path / "missing.yaml", study["executed"])


def test_a_notebook_without_a_schema_is_named(study, monkeypatch):
    monkeypatch.delitem(parameters.SCHEMAS, "b")
    with pytest.raises(PipelineError, match="stage 1: No parameter schema for notebook 'b'"):
        run_pipeline(study["params"], study["executed"])


def test_parameters_no_notebook_declares_are_named(study):
    stages = [{"notebook": study["stages"][0]["notebook"], "parameters": {"valeu": 2}},
              study["stages"][1]]
    write_params(study["params"], study["art"], stages)
    with pytest.raises(PipelineError, match="stage 0: a: unknown parameter 'valeu' = 2; its parameters are artifacts, value, seed"):
        run_pipeline(study["params"], study["executed"])
    write_params(study["params"], study["art"], study["stages"], common={"sed": 1})
    with pytest.raises(PipelineError, match=r"common parameter\(s\) \['sed'\]"):
        run_pipeline(study["params"], study["executed"])


def test_common_parameters_go_only_where_declared(study):
    """b.ipynb declares no `seed`: papermill would warn on every run if the runner passed it."""
    a, b = pipeline.load_params(study["params"])["stages"]
    assert a["parameters"] == {"artifacts": str(study["art"]), "seed": 0, "value": 1}
    assert b["parameters"] == {"artifacts": str(study["art"])}


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml"])
def test_shipped_parameter_files_are_well_formed(name):
    raw = yaml.safe_load((REPO / "params" / name).read_text())
    assert set(raw) <= pipeline.TOP_LEVEL_KEYS and raw["stages"]
    assert raw["stages"][0]["notebook"] == "notebooks/00_world_and_base_model.ipynb"
    stages = pipeline.load_params(REPO / "params" / name)["stages"]  # every name is declared
    assert all(s["parameters"]["artifacts"] == raw["artifacts"] for s in stages)


# ----------------------------------------------------------------------------------------------
# the book


NOTEBOOK_STEMS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))


def test_a_profiles_book_reads_its_own_chapters_and_keeps_the_reference_pages():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    default = profile_book.profile_toc(toc, "default", NOTEBOOK_STEMS)
    files = [c["file"] for part in default["parts"] for c in part["chapters"]]
    assert default["root"] == "book/intro" and "book/easy_vqa" not in files  # other profiles' parts go
    assert files[:len(NOTEBOOK_STEMS)] == [f"book/executed/default/{stem}" for stem in NOTEBOOK_STEMS]
    assert "book/glossary" in files
    smoke = profile_book.profile_toc(toc, "smoke", NOTEBOOK_STEMS)
    assert smoke["root"] == "book/executed/smoke/intro"
    assert [c["file"] for c in smoke["parts"][0]["chapters"]] == [f"book/executed/smoke/{s}" for s in NOTEBOOK_STEMS]
    # a profile that stops before the last chapter (easy-VQA's) lists only the chapters it runs
    shorter = profile_book.profile_toc(toc, "easy_vqa", NOTEBOOK_STEMS[:6])
    assert [c["file"] for c in shorter["parts"][0]["chapters"]] == [f"book/executed/easy_vqa/{s}"
                                                                      for s in NOTEBOOK_STEMS[:6]]


def test_a_profiles_book_is_written_where_the_makefile_builds_it(tmp_path):
    """`python -m inbol_utils.book.profile_book PARAMS` (the Makefile's `book` for a profile other
    than the default): the toc of the profile's stages, and the introduction beside its chapters,
    its glue and links pointing at them and at the book's other pages."""
    for name in ("_toc.yml", "book/intro.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    params = tmp_path / "params" / "mine.yaml"
    params.parent.mkdir()
    params.write_text((REPO / "params" / "easy_vqa.yaml").read_text())
    path = profile_book.write(params, tmp_path)
    assert path == tmp_path / "_build" / "mine" / "_toc.yml"
    toc = yaml.safe_load(path.read_text())
    assert toc["root"] == "book/executed/mine/intro"
    assert toc["parts"][0]["chapters"][-1] == {"file": "book/executed/mine/05_label_noise"}  # easy-VQA runs 00-05
    intro = (tmp_path / "book" / "executed" / "mine" / "intro.md").read_text()
    assert "{glue:text}`04_evaluation.ipynb::headline_verdict_test:s`" in intro
    assert ":doc: 04_evaluation.ipynb\n" in intro and "{doc}`../../glossary`" in intro
    assert "executed/default/04_evaluation" not in intro
    assert "`book/executed/default/`" in intro  # prose that names the folder is left as it is


def test_the_intro_copy_relinks_every_form_of_reference():
    text = ("{doc}`glossary`, {doc}`the terms <glossary>`, {doc}`executed/default/03_training`, "
            "{glue:text}`executed/default/01_boundary_definition.ipynb::conf_corr:.2f`, "
            "{glue}`executed/default/00_world_and_base_model.ipynb::n_seeds`\n:doc: executed/default/04_evaluation.ipynb\n")
    assert profile_book.intro_copy(text) == (
        "{doc}`../../glossary`, {doc}`the terms <../../glossary>`, {doc}`03_training`, "
        "{glue:text}`01_boundary_definition.ipynb::conf_corr:.2f`, "
        "{glue}`00_world_and_base_model.ipynb::n_seeds`\n:doc: 04_evaluation.ipynb\n")


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "params").glob("*.yaml")))
def test_every_shipped_parameter_file_passes_the_runners_checks(name):
    config = pipeline.load_params(REPO / "params" / f"{name}.yaml")
    assert config["stages"] and config["artifacts"] == f"data/{name}"


def test_the_quick_profile_is_the_default_study_less_its_two_documented_trades():
    """params/quick.yaml says it trades the ablations (the label-noise study among them) and one
    preference learning rate, and nothing else: a change to the default study must reach it too."""
    default, quick = (pipeline.load_params(REPO / "params" / f"{name}.yaml") for name in ("default", "quick"))
    assert [s["stem"] for s in quick["stages"]] == [s["stem"] for s in default["stages"]]
    for ours, theirs in zip(quick["stages"], default["stages"]):
        changed = {k for k in theirs["values"] if ours["values"][k] != theirs["values"][k]}
        assert changed <= {"artifacts", "ablations", "noise_n_values", "pref_lr_values"}, (ours["stem"], changed)
        if "pref_lr_values" in changed:
            assert set(ours["values"]["pref_lr_values"]) < set(theirs["values"]["pref_lr_values"])


@pytest.mark.parametrize("version", ["3.9", "3.10"])
def test_an_older_python_stops_with_one_line(version):
    """The runner on an unsupported interpreter, where one is installed: one line, exit status 1,
    before any import of the study can fail with a traceback."""
    python = shutil.which(f"python{version}")
    if python is None or subprocess.run([python, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip(f"no python{version} here")
    done = subprocess.run([python, "-m", "inbol_utils.runner.pipeline", "params/default.yaml"], cwd=parameters.PROJECT_ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert re.fullmatch(rf"inbol_utils needs Python 3\.11 or newer \(the study is tested on 3\.11\); "
                        rf"this is {re.escape(version)}\.\d+\n", done.stderr), done.stderr
