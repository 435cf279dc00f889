"""Kernels started ahead of their stage (inbol_utils.runner.warm_kernel): the imports run early, and the
notebook cannot tell, its namespace and execution counts being those of a fresh kernel. They
listen on Unix sockets, which they remove when they stop."""
import os
import sys
import threading
import time
from pathlib import Path

import nbformat
import papermill
from jupyter_client.channels import HBChannel
from jupyter_core.utils import run_sync

from inbol_utils.runner import warm_kernel
from processes import processes


def notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(sources[0], metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_markdown_cell("import not_code")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources[1:]]
    nbformat.write(nb, path)
    return path


def test_preload_runs_the_top_level_imports_in_order_and_binds_nothing(tmp_path):
    path = notebook(tmp_path / "a.ipynb", "x = 1", "import json\nfrom email import message as m\nx = 2",
                    "%time import wave", "def f():\n    import tabnanny")
    code = warm_kernel.preload(path)
    lines = [line.strip() for line in code.splitlines()]
    assert lines[1:3] == ["import json", "from email import message as m"]
    assert not any("wave" in line or "tabnanny" in line or "not_code" in line for line in lines)
    namespace = {}
    exec(code, namespace)
    assert set(namespace) == {"__builtins__"} and "email.message" in sys.modules


def test_preload_starts_the_pool_server_where_the_notebook_runs_jobs(tmp_path):
    jobs = notebook(tmp_path / "jobs.ipynb", "x = 1", "from inbol_utils.runner import environment, parallel")
    plain = notebook(tmp_path / "plain.ipynb", "x = 1", "import json")
    assert "parallel.start_server()" in warm_kernel.preload(jobs)
    assert "parallel" not in warm_kernel.preload(plain)


def test_a_stage_in_a_warm_kernel_sees_a_fresh_kernel(tmp_path):
    path = notebook(tmp_path / "b.ipynb", "x = 1",
                    'import sys\nassert "colorsys" in sys.modules and "colorsys" not in globals()',
                    "import colorsys\nprint(x + 1)", "import os\nprint(os.getcwd())")
    kernel = warm_kernel.start(path, tmp_path, dict(os.environ))
    try:
        warm_kernel.wait(kernel, 60)
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), parameters={"x": 5},
                                   kernel_name="python3", progress_bar=False, km=kernel.manager)
        assert [c.channels_running for c in kernel.manager.clients] == [True]  # papermill's, left open
    finally:
        warm_kernel.stop(kernel)
    assert not run_sync(kernel.manager.is_alive)()
    # every client closed, so no heartbeat thread or socket outlives the stage (a test run holds hundreds)
    assert not kernel.client.channels_running and not any(c.channels_running for c in kernel.manager.clients)
    # Unix sockets by an absolute path, which the kernel finds from its own working folder; removed after
    sockets = Path(kernel.manager.ip)
    assert kernel.manager.transport == "ipc" and sockets.is_absolute()
    assert not list(sockets.parent.glob(sockets.name + "-*"))
    cells = [c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert [c.execution_count for c in cells] == [1, 2, 3, 4, 5]  # parameters, injected parameters, three cells
    assert cells[-2].outputs[0]["text"] == "6\n"
    assert cells[-1].outputs[0]["text"] == f"{tmp_path}\n" != f"{Path.cwd()}\n"  # the folder it was given


def test_a_kernel_stopped_as_soon_as_it_started_leaves_no_thread_behind(tmp_path):
    """Ctrl-C as the next stage's kernel starts stops the warm one at once. A heartbeat thread
    stopped before it first ran would spin until zmq had no socket left, then die with a traceback
    (about one such stop in ten on this machine, and once in every xdist run of the Ctrl-C tests);
    the warm client starts none."""
    path = notebook(tmp_path / "c.ipynb", "x = 1", "import json")
    before = set(threading.enumerate())
    kernel = warm_kernel.start(path, tmp_path, dict(os.environ))
    assert not any(isinstance(thread, HBChannel) for thread in set(threading.enumerate()) - before)
    warm_kernel.stop(kernel)
    assert set(threading.enumerate()) <= before and not run_sync(kernel.manager.is_alive)()


def test_a_kernel_stopped_mid_cell_prints_nothing(tmp_path, capfd):
    """After a failure or Ctrl-C the runner stops kernels that may be running a cell. Asked to shut
    down then, ipykernel logged a socket error's traceback into the runner's terminal (its stderr
    is the runner's) in each of four tries of this test; killed, it prints nothing."""
    path = notebook(tmp_path / "d.ipynb", "x = 1", "import json")
    kernel = warm_kernel.start(path, tmp_path, dict(os.environ))
    warm_kernel.wait(kernel, 60)
    kernel.client.execute("import time\ntime.sleep(60)")
    time.sleep(1)
    warm_kernel.stop(kernel)
    assert not run_sync(kernel.manager.is_alive)()
    assert "Traceback" not in capfd.readouterr().err


def test_a_stopped_kernel_leaves_no_process_and_no_temporary_file(tmp_path):
    """A kernel that ran jobs has a pool server and multiprocessing's resource tracker beside it,
    which put a socket in a temporary folder. Asked to shut down, such a kernel was terminated
    after 2.5 s, before its exit handlers removed that folder: each stage with a pool left one in
    /tmp. Every kernel now makes its temporary files in a folder of its own, removed with it."""
    path = notebook(tmp_path / "e.ipynb", "x = 1", "from inbol_utils.runner import parallel")
    kernel = warm_kernel.start(path, tmp_path, dict(os.environ))
    warm_kernel.wait(kernel, 120)
    kernel.client.execute("import tempfile\nfolder = tempfile.gettempdir()", silent=True,
                          user_expressions={"folder": "folder"})
    reply = kernel.client.get_shell_msg(timeout=60)
    folder = reply["content"]["user_expressions"]["folder"]["data"]["text/plain"].strip("'")
    assert folder == str(kernel.temporary)
    assert list(kernel.temporary.glob("pymp-*/listener-*"))  # the pool server's socket
    group = kernel.manager.provisioner.pgid
    warm_kernel.stop(kernel)
    assert not kernel.temporary.exists()
    assert not [p for p in processes() if p.group == group and p.state != "Z"]  # a zombie has ended

