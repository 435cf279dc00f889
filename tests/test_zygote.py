"""Kernels forked from the run's zygote (inbol_utils.zygote): a notebook runs in one as in a
launched kernel, with its imports already loaded (and frozen), its own environment and working folder, and
inline figures; jupyter_client stops it, and signals and kills it as its own. Its pools fork their
workers from a copy of it, made before it started."""
import os
import signal

import nbformat
import papermill
import pytest
from jupyter_core.utils import run_sync

from inbol_utils import warm_kernel
from inbol_utils.zygote import Zygote
from test_warm_kernel import notebook

CELLS = ("x = 1",
         'import sys\nassert "colorsys" in sys.modules and "colorsys" not in globals()',
         "import gc\nassert gc.get_freeze_count() > 0  # the imports: no full collection walks them",
         "import colorsys, os\nprint(x + 1, os.environ['STAGE'], os.getcwd(), os.getppid())",
         "import matplotlib.pyplot as plt\nplt.plot([0, 1]);")


@pytest.fixture
def zygote(tmp_path):
    started = Zygote.start([notebook(tmp_path / "b.ipynb", *CELLS)], tmp_path, dict(os.environ))
    yield started
    started.stop()


def run(path, out, stage, cwd, zygote):
    kernel = warm_kernel.start(path, cwd, {**os.environ, "STAGE": stage}, zygote)
    try:
        warm_kernel.wait(kernel, 60)
        papermill.execute_notebook(str(path), str(out), parameters={"x": 5}, kernel_name="python3",
                                   progress_bar=False, km=kernel.manager)
    finally:
        warm_kernel.stop(kernel)
    assert not run_sync(kernel.manager.is_alive)()
    return [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"]


def test_notebooks_run_in_forked_kernels_as_in_launched_ones(tmp_path, zygote):
    path = tmp_path / "b.ipynb"
    for stage, cwd in (("first", tmp_path), ("second", tmp_path.parent)):
        cells = run(path, tmp_path / f"{stage}.ipynb", stage, cwd, zygote)
        assert [c.execution_count for c in cells] == [1, 2, 3, 4, 5, 6]  # a fresh kernel's counts
        assert cells[4].outputs[0]["text"] == f"6 {stage} {cwd} {zygote.process.pid}\n"
        assert "image/png" in cells[5].outputs[-1]["data"]  # matplotlib's inline backend, as in a kernel


def test_a_forked_kernel_is_signalled_and_killed_as_a_process(tmp_path, zygote):
    kernel = warm_kernel.start(tmp_path / "b.ipynb", tmp_path, dict(os.environ), zygote)
    warm_kernel.wait(kernel, 60)
    process = kernel.manager.provisioner.process
    assert process.poll() is None and os.getpgid(process.pid) == process.pid  # its own process group
    run_sync(kernel.manager.signal_kernel)(signal.SIGKILL)
    assert process.wait(timeout=10) == 0 and not run_sync(kernel.manager.is_alive)()
    warm_kernel.stop(kernel)


def test_a_notebook_whose_imports_fail_fails_in_its_own_cell(tmp_path):
    path = notebook(tmp_path / "c.ipynb", "x = 1", "import not_a_module_anywhere")
    zygote = Zygote.start([path], tmp_path, dict(os.environ))
    try:
        with pytest.raises(papermill.PapermillExecutionError, match="not_a_module_anywhere"):
            run(path, tmp_path / "out.ipynb", "c", tmp_path, zygote)
    finally:
        zygote.stop()
    assert zygote.process.returncode == 0


def test_a_forked_kernels_pools_fork_their_workers_from_a_copy_of_it(tmp_path):
    """The pool server is forked with the kernel (no fresh server importing the study again),
    in the kernel's process group, which jupyter_client signals. The pools' resource tracker is
    the zygote's: in that group, it would hold up the kernel's shutdown (it ignores SIGTERM)."""
    path = notebook(tmp_path / "p.ipynb", "x = 1",
                    "import multiprocessing.forkserver, os\n"
                    "import datasets, torch  # what a worker starts with\n"
                    "from inbol_utils import parallel\n"
                    "server = multiprocessing.forkserver._forkserver._forkserver_pid\n"
                    "assert server and os.getpgid(server) == os.getpgid(0)\n"
                    "assert parallel.run(os.getppid, [{}, {}], workers=2) == [server, server]\n"
                    "from multiprocessing import resource_tracker\n"
                    "tracker = resource_tracker._resource_tracker._pid\n"
                    "assert tracker and os.getpgid(tracker) != os.getpgid(0)  # the zygote's, outside the group")
    zygote = Zygote.start([path], tmp_path, dict(os.environ))
    try:
        run(path, tmp_path / "out.ipynb", "p", tmp_path, zygote)
    finally:
        zygote.stop()
