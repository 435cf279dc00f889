"""The fair-test protocol's moving parts: the method registry, checkpoint selection along a
schedule, the tuning grids, and jobs in parallel processes."""
import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from inbol_utils.tools import bench
from inbol_utils import methods, protocol, training
from inbol_utils.runner import parallel, profiling
from inbol_utils.methods import CONTROL, DPO, IDKIT, INBOL
from processes import processes


def test_checkpoint_selection_keeps_the_best_weights_and_stops_where_told(tmp_path, processor, tiny_world):
    """Scored every 2 steps with scripted values 0.1, 0.5, 0.3: the step-4 weights are the ones
    left in the model; with stop_at=3 training ends at step 3 of the same 6-step schedule."""
    from inbol_utils import modeling

    size = modeling.ModelSize(vision_width=32, vision_layers=1, text_width=32, text_layers=1)
    rows = tiny_world[0]["base_train"].select(range(64)).map(lambda r: {"response": r["answers"][0]})
    scores, snapshots = iter([0.1, 0.5, 0.3]), {}

    def probe(model):
        step = 2 * (len(snapshots) + 1)
        snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"trust": next(scores)}

    model = modeling.build_model(processor, size, seed=0)
    callback = training.ProbeCallback(probe, every=2, select_on="trust")
    args = training.training_arguments(str(tmp_path / "a"), 6, 8, 1e-2, 0, disable_tqdm=True)
    training.train_sft(model, processor, rows, args, [callback])
    assert callback.best_step == 4 and [h["step"] for h in callback.history] == [2, 4, 6]
    assert all(torch.equal(v, snapshots[4][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, snapshots[6][k]) for k, v in model.state_dict().items())

    model = modeling.build_model(processor, size, seed=0)
    stopper = training.ProbeCallback(None, every=6, stop_at=3)
    args = training.training_arguments(str(tmp_path / "b"), 6, 8, 1e-2, 0, disable_tqdm=True)
    log = training.train_sft(model, processor, rows, args, [stopper])
    assert log["step"].max() <= 3 and stopper.best_step is None


def test_grid_and_candidate_names():
    candidates = protocol.grid({"steps": 10, "lr": 1.0}, {"lr": [1e-5, 5e-5], "beta": [0.1, 0.5]})
    assert len(candidates) == 4 and all(c["steps"] == 10 for c in candidates)
    assert {(c["lr"], c["beta"]) for c in candidates} == {(1e-5, 0.1), (1e-5, 0.5), (5e-5, 0.1), (5e-5, 0.5)}
    assert protocol.candidate_name(candidates[0], ["lr", "beta"]) == "lr1e-05_beta0.1"


def test_every_method_is_tuned_alike_as_the_registry_says():
    """The preference stages search lr x beta with the study's knobs, vanilla DPO with its own
    ca_mode; the control searches lr with none of DPO's knobs; all share the schedule."""
    fixed = {"steps": 10, "batch_size": 4, "seed": 0}
    knobs = {"anchor_weight": 1.0, "ca_signal": "both", "ca_mode": "margin"}
    grids = protocol.candidates([IDKIT, DPO, INBOL, CONTROL], fixed, {"lr": [1e-4, 2e-4], "beta": [0.1, 0.5]}, knobs)
    assert [len(grids[m]) for m in (IDKIT, DPO, INBOL, CONTROL)] == [2, 4, 4, 2]
    assert {c["ca_mode"] for c in grids[DPO]} == {"none"} and {c["ca_mode"] for c in grids[INBOL]} == {"margin"}
    assert all(c.items() >= knobs.items() - {("ca_mode", "margin")} for c in grids[DPO] + grids[INBOL])
    assert all(set(c) == {*fixed, "lr"} for c in grids[IDKIT] + grids[CONTROL])
    assert [(c["lr"], c["beta"]) for c in grids[INBOL]] == [(1e-4, 0.1), (1e-4, 0.5), (2e-4, 0.1), (2e-4, 0.5)]


def test_registry_places_every_model_and_its_start():
    home = protocol.seed_dir("art", 1)
    assert protocol.model_dir(home, methods.BASE) == protocol.model_dir(home, methods.ABSTAIN) == home / "base_model"
    assert protocol.start_model(home, IDKIT) == home / "base_model"
    assert all(protocol.start_model(home, m) == home / "models" / "idkit" for m in (DPO, INBOL, CONTROL))
    keys = [methods.REGISTRY[m].key for m in methods.METHODS]
    assert len(set(keys)) == len(keys) and methods.TRAINED == (IDKIT, DPO, INBOL, CONTROL)
    trained_models = {methods.REGISTRY[m].model for m in methods.TRAINED}
    assert len(trained_models) == 4 and all(methods.REGISTRY[m].data for m in methods.TRAINED)


def _job(x: int, y: int) -> tuple[int, int, bool]:
    # Every Trainer.train() starts with a full garbage collection: a job must find torch's and
    # transformers' objects frozen out of its sight (they cost 0.6 s of a core per training job).
    return x + y, torch.get_num_threads(), gc.get_freeze_count() > 100_000


def test_parallel_jobs_keep_their_order_run_single_threaded_and_raise(monkeypatch):
    jobs = [{"x": i, "y": 10} for i in range(3)]
    assert parallel.run(_job, jobs, workers=2) == [(10, 1, True), (11, 1, True), (12, 1, True)]
    assert parallel.run(_job, jobs, workers=1) == [(10, 1, True), (11, 1, True), (12, 1, True)]
    with pytest.raises(TypeError):
        parallel.run(_job, [{"x": 1}, {"x": 2}], workers=2)
    with pytest.raises(ValueError, match="workers"):
        parallel.run(_job, jobs, workers=-1)


def _stops_at_ctrl_c() -> bool:
    return signal.getsignal(signal.SIGINT) is signal.default_int_handler


# A kernel that starts its pool server, then stops as the runner stops a kernel: its whole process group at once.
KERNEL_WITH_A_SERVER = """
import os, signal
from inbol_utils.runner import parallel
print("starting", flush=True)
parallel.start_server()
print("ready", flush=True)
os.killpg(0, signal.SIGKILL)
"""


def test_a_ctrl_c_while_the_pool_server_imports_prints_nothing_and_jobs_still_stop_at_one(tmp_path):
    """jupyter_client interrupts a kernel's whole process group before shutting it down, and the
    pool server is often still importing then. It inherits an ignored Ctrl-C, so it carries on and
    prints nothing (it printed a KeyboardInterrupt traceback into the runner's terminal in one of
    three Ctrl-Cs sent into a smoke run). Its workers stop at Ctrl-C as before."""
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL_WITH_A_SERVER], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})  # the killed server's socket folder
    assert kernel.stdout.readline() == "starting\n"
    deadline, servers = time.monotonic() + 30, []
    while not servers:
        assert time.monotonic() < deadline, "no pool server started"
        servers = [p.pid for p in processes() if p.parent == kernel.pid and "forkserver" in p.command]
        time.sleep(0.01)
    os.kill(servers[0], signal.SIGINT)  # as it starts its imports (they take seconds)
    out, err = kernel.communicate(timeout=60)
    assert out == "ready\n" and "Traceback" not in err  # it served, and said nothing
    assert parallel.run(_stops_at_ctrl_c, [{}, {}], workers=2) == [True, True]


def _marked_job(folder: str, seconds: float, fail: bool = False) -> None:
    """A job that leaves a mark when it starts, then fails at once or works `seconds` and leaves
    another when it finishes."""
    Path(folder, f"started-{time.monotonic_ns()}").touch()
    if fail:
        raise ValueError("a job that fails")
    _busy(seconds)
    Path(folder, f"finished-{time.monotonic_ns()}").touch()


def test_a_failing_job_ends_the_pool_without_waiting_for_the_others(tmp_path):
    """Before, the error showed only once every job handed out had finished (in chapter 00, the
    base models: minutes)."""
    jobs = [{"folder": str(tmp_path), "seconds": 0, "fail": True}] + [{"folder": str(tmp_path), "seconds": 20}] * 2
    with pytest.raises(ValueError, match="a job that fails"):
        parallel.run(_marked_job, jobs, workers=2)
    assert not list(tmp_path.glob("finished-*")) and not multiprocessing.active_children()


def _killed_job(killed: bool) -> bool:
    """A job whose worker dies without raising, as when the system runs out of memory."""
    if killed:
        os.kill(os.getpid(), signal.SIGKILL)
    return killed


def test_a_worker_that_dies_says_what_to_change():
    """Before: "A process in the process pool was terminated abruptly while the future was running
    or pending", and nothing to do about it."""
    with pytest.raises(RuntimeError, match=r"died running _killed_job \(out of memory, or killed\).*`workers` "
                                           r"parameter \(2 now; 1 runs them in this process\)"):
        parallel.run(_killed_job, [{"killed": False}, {"killed": True}], workers=2)
    assert not multiprocessing.active_children()


# A notebook in Jupyter whose jobs are interrupted: Jupyter sends Ctrl-C to the kernel's process group.
NOTEBOOK_WITH_JOBS = """
import sys
sys.path.insert(0, sys.argv[2])
from inbol_utils.runner import parallel
from test_protocol import _marked_job
try:
    parallel.run(_marked_job, [{"folder": sys.argv[1], "seconds": 30}] * 4, workers=2)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_an_interrupted_notebook_gets_its_prompt_back_without_waiting_for_its_jobs(tmp_path):
    """Interrupting a chapter in Jupyter took as long as the jobs handed out (30 s here; the base
    models' training in chapter 00), though every worker had stopped its own at once."""
    marks = tmp_path / "marks"
    marks.mkdir()
    kernel = subprocess.Popen([sys.executable, "-c", NOTEBOOK_WITH_JOBS, str(marks), str(Path(__file__).parent)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
    deadline = time.monotonic() + 60
    while len(list(marks.glob("started-*"))) < 2:
        assert time.monotonic() < deadline and kernel.poll() is None, "the jobs did not start"
        time.sleep(0.05)
    os.killpg(kernel.pid, signal.SIGINT)
    out, err = kernel.communicate(timeout=60)
    assert out == "interrupted\n" and "Traceback" not in err, err
    assert not list(marks.glob("finished-*"))


def test_automatic_workers_run_up_to_four_jobs_a_core_at_once(monkeypatch):
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    assert [parallel.worker_count(0, n) for n in (1, 3, 7, 8, 9, 16)] == [1, 3, 7, 8, 2, 2]
    assert parallel.worker_count(2, 7) == 2 and parallel.worker_count(5, 3) == 3
    with pytest.raises(ValueError, match="workers"):
        parallel.worker_count(-1, 3)


def _chatty(x: int) -> int:
    print(f"step {x}: loss 0.5")  # as Trainer prints its log lines when its progress bar is off
    return x


def test_a_job_run_in_this_process_prints_nothing_here(capsys):
    """One job runs in the notebook's own process; its prints must not land in the book."""
    assert parallel.run(_chatty, [{"x": 3}], workers=0) == [3]
    assert capsys.readouterr().out == ""


def _busy(seconds: float) -> None:
    """Spend `seconds` of CPU time (parts count CPU time, so sleeping would count nothing)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def _timed_job(seconds: float) -> float:
    with profiling.part("training"):
        _busy(seconds)
        with profiling.part("greedy answers"):  # a validation probe inside training
            _busy(seconds)
    return seconds


def test_profile_parts_are_exclusive_and_come_back_from_workers(tmp_path, monkeypatch):
    record = tmp_path / "parts.json"
    monkeypatch.setenv(profiling.ENV, str(record))
    profiling.take()
    assert parallel.run(_timed_job, [{"seconds": 0.2}] * 2, workers=2) == [0.2, 0.2]
    totals = profiling.read(record)  # the kernel's file: both workers' seconds, each part once
    assert 0.4 <= totals["training"] < 0.5 and 0.4 <= totals["greedy answers"] < 0.5
    with pytest.raises(ValueError, match="unknown part"):
        with profiling.part("plotting"):
            pass
    profiling.take()


def test_training_rate_is_tokens_over_core_seconds_of_training_only():
    """make bench's speed of the machine on the study's own work: the training parts' tokens over
    their core-seconds, summed over stages; other parts and stages that trained nothing (or reused
    every job) do not count."""
    base = {"parts_tokens": {"training": 3000, "greedy answers": 10_000},
            "parts_core_seconds": {"training": 1.5, "greedy answers": 0.1}}
    preference = {"parts_tokens": {"training": 1000}, "parts_core_seconds": {"training": 0.5}}
    probe = {"parts_tokens": {"sampling": 500}, "parts_core_seconds": {"sampling": 2.0}}
    assert bench.training_rate([base]) == 2000
    assert bench.training_rate([base, preference, probe]) == 2000  # (3000 + 1000) / (1.5 + 0.5)
    assert bench.training_rate([probe]) is None and bench.training_rate([]) is None
