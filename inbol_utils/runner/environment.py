"""What a result depends on besides the code and the parameters: the machine and the libraries.

`pin` fixes what a process can fix: one torch thread (a job's floats then do not depend on the
core count), torch's deterministic algorithms where it has them, a seed for the global random
streams (every job seeds its own too, and data order follows those seeds), and cuBLAS's
workspace on a GPU. Every notebook calls `record` in its first cell, which pins the kernel and
writes the facts nobody can pin (the CPU and the float kernels torch picked for it, the library
versions) for that stage to <artifacts>/results/environment.json; parallel workers pin
themselves (`parallel`).

What that buys: on one machine, the same parameters give byte-identical results files
(tests/test_smoke.py reruns chapter 4 under another hash seed and compares). On another CPU
torch runs other float kernels, rounding differs in the last bits, and training from scratch
amplifies it: the numbers move, and so can a verdict near the edge of its interval (chapter 4's
recorded reruns say which came back).
"""
from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

import numpy as np

from ..artifacts import write_json
from .reuse import code_digest, numerics

THREADS = 1
SEED = 0


def pin() -> None:
    """One thread, deterministic algorithms, seeded global random streams, for this process."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when CUDA starts
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)  # warn where torch has none
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """The CPU and core count, for quoting a timing with the machine it came from."""
    return f"{cpu_name()}, {os.cpu_count()} cores"


def facts() -> dict:
    """The machine, threads and libraries this process computes with."""
    import torch

    return {"cpu": cpu_name(), "cores": os.cpu_count(), **numerics(), "torch_threads": torch.get_num_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "system": f"{platform.system()} {platform.machine()}", "code": code_digest()}


def record(artifacts: str | os.PathLike, stage: str) -> dict:
    """Pin this process, then record its facts as `stage`'s in <artifacts>/results/environment.json
    (one entry per stage: a stage rerun elsewhere says so). No clock time: two runs on one
    machine write the same bytes. Returns the stage's facts."""
    pin()
    path = Path(artifacts) / "results" / "environment.json"
    stages = read(artifacts)
    stages[stage] = facts()
    write_json(path, {"stages": dict(sorted(stages.items()))})
    return stages[stage]


def read(artifacts: str | os.PathLike) -> dict[str, dict]:
    """Every stage's recorded facts ({} before any stage ran)."""
    path = Path(artifacts) / "results" / "environment.json"
    return json.loads(path.read_text())["stages"] if path.is_file() else {}


def setups(stages: dict[str, dict]) -> int:
    """How many different setups (machine, threads, libraries) the stages ran on: 1 is the
    case the byte-for-byte promise is about."""
    return len({json.dumps({k: v for k, v in f.items() if k != "code"}, sort_keys=True) for f in stages.values()})
