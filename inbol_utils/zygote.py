"""Notebook kernels forked from one process that has already imported the study.

A fresh kernel spends 8-14 s of a core importing torch, transformers, datasets and the plotting
libraries, and a run starts one per stage. The warm kernels (`warm_kernel`) hide that time
behind the stage before, but on two busy cores hidden time is still spent. So the runner starts
one zygote per run: a process that imports, once, what every stage's notebook imports
(`warm_kernel.preload`), then forks each stage's kernel on request. A forked kernel starts with
those modules loaded, as a warm kernel is after its preload, and with an empty namespace: the
kernel itself (ipykernel's app, its sockets and threads) is made in the child, after the fork.

A kernel's pools (`parallel`) fork their workers from a copy of the kernel made just before it
started, and share the zygote's resource tracker: no process imports the study a second time.

jupyter_client drives a forked kernel as its own: `ForkingProvisioner` is its `LocalProvisioner`
with the `Popen` replaced by a fork in the zygote (`Forked`, which answers as a `Popen` does).
Run `python -m inbol_utils.zygote NOTEBOOK...` only through `Zygote.start`.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from multiprocessing import resource_tracker
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Any

from . import environment, warm_kernel

LAUNCHER = ["-m", "ipykernel_launcher"]  # how a Python kernel spec starts its kernel
# ipykernel picks the inline backend through MPLBACKEND before matplotlib is imported; the zygote
# imports matplotlib before any kernel exists, so it sets it first, as the kernel would.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


class Forked:
    """A kernel forked by the zygote, answering as the `subprocess.Popen` it replaces. The
    zygote reaps its children, so an exit is seen as the process being gone (code 0)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """The zygote process of one run (`start`), and the requests that make it fork kernels."""

    def __init__(self, process: subprocess.Popen):
        self.process = process

    @classmethod
    def start(cls, notebooks: list[Path], cwd: Path, env: dict[str, str]) -> Zygote:
        """Start a zygote in `cwd` with `env` that imports what `notebooks` import."""
        process = subprocess.Popen([sys.executable, "-m", __name__, *map(str, notebooks)], cwd=cwd,
                                   env={**env, "MPLBACKEND": env.get("MPLBACKEND", INLINE_BACKEND)},
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        return cls(process)

    def fork(self, cmd: list[str], cwd: str | os.PathLike, env: dict[str, str]) -> Forked:
        """Fork a kernel that runs as `cmd` (a Python kernel spec's command line) would."""
        request = {"argv": cmd[len(LAUNCHER) + 1:], "cwd": str(cwd), "env": env}
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = self.process.stdout.readline()
        except BrokenPipeError:
            reply = ""
        if not reply:
            raise RuntimeError(f"the kernel zygote exited (code {self.process.wait()}): see its output above")
        return Forked(json.loads(reply)["pid"])

    def provisioner(self, manager) -> ForkingProvisioner:
        """A provisioner for `manager` (set as its `provisioner` before it starts a kernel)."""
        return ForkingProvisioner(kernel_id=manager.kernel_id, kernel_spec=manager.kernel_spec,
                                  parent=manager, zygote=self)

    def stop(self) -> None:
        """End the zygote: it exits when its input closes, and so do the kernels it forked that
        are still running (ipykernel's parent poller): stop it after them."""
        self.process.stdin.close()
        self.process.wait()
        self.process.stdout.close()


class ForkingProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, launching its kernel by a fork in `zygote` when the
    kernel spec starts Python's ipykernel (any other command is started as usual)."""

    zygote = Any()

    async def launch_kernel(self, cmd: list[str], **kwargs):
        if cmd[1:len(LAUNCHER) + 1] != LAUNCHER:
            return await super().launch_kernel(cmd, **kwargs)
        self.cwd = kwargs.get("cwd", Path.cwd())
        self.process = self.zygote.fork(cmd, self.cwd, kwargs.get("env", dict(os.environ)))
        self.pid = self.pgid = self.process.pid  # the child leads its own group
        return self.connection_info


def _child(request: dict) -> None:
    """In the forked child: become the kernel that `request` describes, then exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the kernel waits for its own subprocesses
    os.setsid()  # its own process group, which jupyter_client signals, as for a launched kernel
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # the zygote's stdout is its answer pipe; a kernel writes where a launched one would
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"], JPY_PARENT_PID=str(os.getppid()))  # it exits if the zygote dies
    from . import parallel

    parallel.fork_pool_server()  # while the kernel-to-be has no thread: its pools fork from a copy of it
    from ipykernel import kernelapp  # imported here: its defaults read this environment

    kernelapp.launch_new_instance(argv=request["argv"])
    sys.stdout.flush()
    os._exit(0)


def main(notebooks: list[str]) -> None:
    """Import what the notebooks import, then fork a kernel for each request line on stdin."""
    for notebook in notebooks:
        try:
            exec(warm_kernel.preload(Path(notebook)), {})
        except Exception:  # the notebook's own import cell fails again, with its traceback in the chapter
            pass
    if "torch" in sys.modules:  # what every kernel's first cell and every pool worker pins with
        for name in environment.PIN_IMPORTS:
            importlib.import_module(name)
    # What the imports made lives as long as the kernels: out of the collector's sight, a full
    # collection (every Trainer.train() starts with one) walks only what the notebook made.
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they exit
    # The pools' resource tracker, one for every kernel, outside their process groups: a kernel's
    # shutdown signals the children in its group until none is left, and the tracker ignores
    # SIGTERM (a stop that had started a pool took 2.6 s).
    resource_tracker.ensure_running()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _child(request)
            finally:
                os._exit(1)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
