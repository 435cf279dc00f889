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
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import Any, Callable, Sequence

from . import environment, profiling

# What the pool server imports once, for every worker it forks: the jobs' modules and torch.
PRELOAD = ["inbol_utils.protocol", "inbol_utils.ablations", "torch"]


def _quiet_single_thread() -> None:
    import datasets

    # The fork server's imports are never garbage; frozen, they are not walked by the full
    # collection every Trainer.train() starts with (0.6 s of a core each, with them).
    gc.freeze()
    environment.pin()  # one thread, deterministic algorithms, as the kernel
    profiling.stop_writing()
    datasets.disable_progress_bars()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # errors still come back, raised in the caller
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the server ignores Ctrl-C (`_context`); jobs stop


def _context() -> multiprocessing.context.BaseContext:
    """Workers forked from a server that imported the study once per process. A spawned worker
    pays the imports itself (torch, transformers, datasets: about 7 s on the 2-core machine) at
    every pool a notebook starts; fork from the kernel itself would copy its threads and locks,
    while the fork server is a fresh single-threaded process that lives as long as the kernel.

    The server is started here, with Ctrl-C ignored, which it inherits. Python's fork server
    ignores Ctrl-C itself only once its imports are done, and a kernel being shut down is first
    sent one (jupyter_client interrupts the kernel's whole process group): a server still
    importing then died printing a traceback into the runner's terminal. It exits with its
    kernel either way."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()  # starts it, or finds it running; does not wait for its imports
    finally:
        signal.signal(signal.SIGINT, previous)
    return context


def _nothing() -> None:
    """What `start_server`'s process runs."""


def start_server() -> None:
    """Start this process's pool server now, before its first pool needs it: the runner's
    kernels call this while the stage before theirs runs (`warm_kernel`), so that the server's
    imports are not waited for. A process started in the server's context starts the server."""
    process = _context().Process(target=_nothing)
    process.start()
    process.join()


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
    others = set(multiprocessing.active_children())
    with ProcessPoolExecutor(n, mp_context=_context(), initializer=_quiet_single_thread) as pool:
        try:
            results = []
            for result, totals in pool.map(_call, [(fn, job) for job in jobs]):
                profiling.add(totals)
                results.append(result)
            return results
        except BaseException as err:
            # A job failed, or Ctrl-C (a notebook interrupted in Jupyter): leaving the pool would
            # wait for every job already handed out, minutes of training, before the error or the
            # interrupt showed. Its workers are killed instead, which ends the pool at once.
            for worker in set(multiprocessing.active_children()) - others:
                worker.kill()
            if isinstance(err, BrokenProcessPool):  # a worker died without an error to show
                raise RuntimeError(
                    f"a worker process died running {fn.__name__} (out of memory, or killed): run fewer "
                    f"jobs at once with the `workers` parameter ({n} now; 1 runs them in this process)"
                ) from err
            raise
