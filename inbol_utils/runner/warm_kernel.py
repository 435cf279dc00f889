"""Notebook kernels started one stage ahead, with the notebook's imports already done.

Every stage runs in a fresh kernel, which spends about 4 s starting and 8-10 s importing torch,
transformers, datasets and the plotting libraries before its first result (`make bench`: the
first cell of every chapter). None of that depends on the stage before, and a stage's own
imports keep only one of the two cores busy. So the runner starts the next stage's kernel when
a stage starts (jupyter_client's kernel manager, handed to papermill as nbclient's `km`), and
the two kernels import side by side.

Only the notebook's own top-level import statements run ahead, inside a function that leaves no
name behind and with `silent`, so that they leave no execution count either: the notebook still
runs every cell in order, its parameters first, in an empty namespace, and `environment.pin`
still sets its threads and seeds in its first cell. The kernel's pool server (`parallel`) is
started ahead too, when the notebook imports the study's job runner.
"""
from __future__ import annotations

import ast
import queue
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelClient, BlockingKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from jupyter_core.utils import run_sync
from traitlets import List


def preload(notebook: Path) -> str:
    """Code that runs the notebook's top-level import statements, in order, and binds nothing."""
    statements = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with IPython magics: its imports are left to the notebook
            continue
        statements += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    if any("inbol_utils.runner" in statement and "parallel" in statement for statement in statements):
        statements.append("from inbol_utils.runner import parallel; parallel.start_server()")
    # What the imports made lives as long as the kernel: out of the collector's sight, a full
    # collection (every Trainer.train() starts with one) walks only what the notebook made.
    statements.append("import gc; gc.freeze()")
    body = "".join(f"    {statement}\n" for statement in statements)
    return f"def _preload():\n{body}_preload()\ndel _preload\n"


class ClosingKernelManager(AsyncKernelManager):
    """A kernel manager that keeps the clients it makes, so that `stop` can close them. nbclient
    leaves its client's channels open when it did not start the kernel (here it never does), and
    each left open keeps a heartbeat thread and its sockets: a process that runs many stages, such
    as the test suite's, would run out of them."""
    clients = List()

    def client(self, **kwargs: object) -> AsyncKernelClient:
        made = super().client(**kwargs)
        self.clients.append(made)
        return made


@dataclass
class WarmKernel:
    """A started kernel (papermill runs the notebook in `manager`), the request, sent by `client`,
    that runs the notebook's imports, and the kernel's own temporary folder (`start`)."""
    manager: ClosingKernelManager
    client: BlockingKernelClient
    request: str
    temporary: Path


def _manager() -> ClosingKernelManager:
    """A kernel manager whose kernel listens on Unix sockets named by an absolute path, which a
    kernel in any working folder finds (over TCP, every kernel warned in the run's log of
    unencrypted traffic; messages are signed either way)."""
    sockets = Path(jupyter_runtime_dir())
    sockets.mkdir(parents=True, exist_ok=True)
    # A short name: a socket's path may not pass 107 characters.
    return ClosingKernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / f"k-{uuid.uuid4().hex[:8]}"))


def start(notebook: Path, cwd: Path, env: dict[str, str]) -> WarmKernel:
    """Start a Python kernel in `cwd` with `env` and ask it to run the notebook's imports
    (`preload`), without waiting. The kernel and its children make their temporary files in a
    folder of their own (TMPDIR, which `tempfile` and multiprocessing read), which `stop` removes."""
    manager = _manager()
    temporary = Path(tempfile.mkdtemp(prefix="inbol-kernel-"))
    run_sync(manager.start_kernel)(cwd=str(cwd), env={**env, "TMPDIR": str(temporary)})
    client = BlockingKernelClient()
    client.load_connection_info(manager.get_connection_info())
    # The shell channel alone: this client sends one request and reads its reply. A heartbeat
    # channel stopped just after it starts (a Ctrl-C as kernels start) can miss the stop, spin
    # opening sockets until zmq refuses one ("Too many open files"), and print that thread's
    # traceback (the one in jupyter_client issue 988).
    client.start_channels(iopub=False, stdin=False, hb=False, control=False)
    return WarmKernel(manager, client, client.execute(preload(notebook), silent=True, store_history=False), temporary)


def wait(kernel: WarmKernel, timeout: float) -> None:
    """Return when the kernel has done the imports (papermill's client may not connect to a
    kernel that is still busy: it waits for a first answer that then never comes)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = kernel.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"the kernel did not finish the notebook's imports in {timeout:.0f} s") from None
        if reply["parent_header"].get("msg_id") == kernel.request:
            return


def stop(kernel: WarmKernel) -> None:
    """Kill the kernel's process group (the kernel, its pool server and workers) and remove its
    temporary folder (papermill leaves a kernel it did not start running), and close every client
    of it: ours, and the one papermill's nbclient made and left open.

    Killed, not asked to shut down. Asked, ipykernel first sends its children SIGTERM and waits
    for them to go, but the pool server's resource tracker (multiprocessing's) ignores SIGTERM, so
    jupyter_client terminated the kernel itself 2.5 s later, before its exit handlers had run: every
    stage with a pool waited that long and left the server's socket folder in /tmp. And a kernel
    asked mid-cell (after a failure or a Ctrl-C) closed its sockets under the cell's reply and
    logged that error's traceback into the runner's terminal. Killed, it is gone in 0.1 s, and what
    it leaves is in the folder removed here."""
    kernel.client.stop_channels()
    for client in kernel.manager.clients:
        client.stop_channels()
    if run_sync(kernel.manager.is_alive)():
        run_sync(kernel.manager.shutdown_kernel)(now=True)
    run_sync(kernel.manager.cleanup_resources)()
    shutil.rmtree(kernel.temporary, ignore_errors=True)
