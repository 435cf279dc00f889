"""Independent jobs (seeds, grid points) in parallel processes, one torch thread each.

The tiny model's matmuls are too small for two threads to share well: measured on the 2-core
machine, 100 base-model steps took 10.0 s with two threads in one process and 12.0 s with one,
while two one-thread processes side by side finished 100 steps each in 12.6 s: 1.6x the
throughput. Each job also runs with one thread wherever it runs, so its floats do not depend on
the machine's core count. Jobs are plain functions of inbol_utils with picklable arguments;
what they print goes nowhere (the notebooks show their results instead).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence


def _quiet_single_thread() -> None:
    import datasets
    import torch

    torch.set_num_threads(1)
    datasets.disable_progress_bars()
    sys.stdout = sys.stderr = open(os.devnull, "w")  # errors still come back, raised in the caller


def _call(fn_and_job: tuple[Callable, dict]) -> Any:
    fn, job = fn_and_job
    return fn(**job)


def worker_count(workers: int, n_jobs: int) -> int:
    """`workers` processes, never more than there are jobs. 0 chooses: every job at once when
    there are at most two per core (3 seeds on 2 cores: a 2 + 1 split would leave the last job
    alone on one thread while a core idles), else one process per core."""
    if workers < 0:
        raise ValueError(f"workers must be 0 (automatic) or a positive number, got {workers}")
    cores = os.cpu_count() or 1
    if workers == 0:
        workers = n_jobs if n_jobs <= 2 * cores else cores
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
        try:
            return [fn(**job) for job in jobs]
        finally:
            torch.set_num_threads(threads)
    context = multiprocessing.get_context("spawn")  # fork would copy a kernel's threads and locks
    with ProcessPoolExecutor(n, mp_context=context, initializer=_quiet_single_thread) as pool:
        return list(pool.map(_call, [(fn, job) for job in jobs]))
