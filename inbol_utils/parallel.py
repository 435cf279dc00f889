"""Independent jobs (seeds, grid points) in parallel processes, one torch thread each.

The tiny model's matmuls are too small for two threads to share well: measured on the 2-core
machine, 100 base-model steps took 10.0 s with two threads in one process and 12.0 s with one,
while two one-thread processes side by side finished 100 steps each in 12.6 s: 1.6x the
throughput. Each job also runs with one thread wherever it runs, so its floats do not depend on
the machine's core count. Jobs are plain functions of inbol_utils with picklable arguments;
what they print goes nowhere (the notebooks show their results instead).
"""
from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import socket
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

from . import environment, profiling


def _quiet_single_thread() -> None:
    import datasets

    # The fork server's imports are never garbage; frozen, they are not walked by the full
    # collection every Trainer.train() starts with (0.6 s of a core each, with them).
    gc.freeze()
    environment.pin()  # one thread, deterministic algorithms, as the kernel
    profiling.stop_writing()
    datasets.disable_progress_bars()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # errors still come back, raised in the caller


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server that has imported the study once per kernel. A spawned
    worker pays the imports itself (torch, transformers, datasets: about 7 s on the 2-core
    machine) at every pool a notebook starts; fork from the kernel itself would copy its
    threads and locks, while the fork server is a fresh single-threaded process. In the
    runner's kernels the server is already there, a copy of the kernel made before it started
    (`fork_pool_server`), and has nothing to import."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["inbol_utils.protocol", "inbol_utils.ablations", *environment.PIN_IMPORTS])
    return context


def fork_pool_server() -> None:
    """Fork this process's pool server now, a copy of this process as it is, where the first
    pool would spawn one that imports the study again: 8-10 s of a core, and of the stage's
    wall time, before its first job. Only for a process that has imported the study and runs
    no thread yet: the zygote's kernels call it before they start (`zygote`), and it imports
    nothing more (a worker imports what its job needs and the copy lacks). The server is the
    one `multiprocessing.forkserver.ensure_running` would launch, but forked, not spawned; it
    exits with the last process that holds its "alive" pipe, and shares the caller's process
    group, so a signal to the kernel's group reaches it and its workers too."""
    from multiprocessing import connection, forkserver, util

    address = connection.arbitrary_address("AF_UNIX")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    if not util.is_abstract_socket_namespace(address):
        os.chmod(address, 0o600)
    listener.listen()
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(alive_w)
            forkserver.main(listener.fileno(), alive_r, preload=[])
        finally:
            os._exit(0)
    listener.close()
    os.close(alive_r)
    server = forkserver._forkserver  # as ensure_running() leaves it after a launch
    server._forkserver_address, server._forkserver_alive_fd, server._forkserver_pid = address, alive_w, pid
    # ipykernel's shutdown signals its children and waits until none is left; a dead server
    # left unreaped still counts, and held every stop for 2.6 s.
    signal.signal(signal.SIGCHLD, lambda *_: _reap(pid))


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _call(fn_and_job: tuple[Callable, dict]) -> tuple[Any, dict[str, float]]:
    """Run one job in a worker; its result comes back with the seconds and tokens it spent per part."""
    fn, job = fn_and_job
    return fn(**job), profiling.take()


def worker_count(workers: int, n_jobs: int) -> int:
    """`workers` processes, never more than there are jobs. 0 chooses: every job at once when
    there are at most four per core, else one process per core. The system then shares the
    cores among the jobs, so no core idles while a last job runs alone: 3 seeds on 2 cores
    would otherwise split 2 + 1, and chapter 4's seven ablation variants, two of them three
    times longer than the rest, took 238 s in two processes and 218 s all at once (the
    2-core machine, the same results to the byte)."""
    if workers < 0:
        raise ValueError(f"workers must be 0 (automatic) or a positive number, got {workers}")
    cores = os.cpu_count() or 1
    if workers == 0:
        workers = n_jobs if n_jobs <= 4 * cores else cores
    return max(1, min(workers, n_jobs))


def run(fn: Callable[..., Any], jobs: Sequence[dict], workers: int = 0) -> list[Any]:
    """fn(**job) for every job, results in the jobs' order. With one worker (or one job) the
    jobs run here, in this process, one after another, still with one thread each."""
    jobs = list(jobs)
    n = worker_count(workers, len(jobs))
    if n == 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        # As in a worker, what the jobs print goes nowhere: a Trainer run here would otherwise
        # print its log lines into the notebook, and so into the book.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                return [fn(**job) for job in jobs]
            finally:
                torch.set_num_threads(threads)
    with ProcessPoolExecutor(n, mp_context=_context(), initializer=_quiet_single_thread) as pool:
        results = []
        for result, totals in pool.map(_call, [(fn, job) for job in jobs]):
            profiling.add(totals)
            results.append(result)
        return results
