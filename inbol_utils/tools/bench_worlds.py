"""Does the base-model recipe meet its targets on any world? One base model per world, printed.

    python -m inbol_utils.tools.bench_worlds [--worlds 0 1 2 3 4] [--params params/default.yaml]
    make bench-worlds [WORLDS="5 6 7"] [PARAMS=params/classroom.yaml]

Notebook 00 itself, run by the runner on a copy of a profile's params file (`--params`, by
default params/default.yaml) with one seed per world and each seed on its own world
(`world_seed` null): seed w's base model is then the one the profile's replicate w trains, by
construction rather than by a second copy of the notebook's recipe. The copy has its own
artifacts folder, data/bench_worlds/<profile>, so the profile's own run is never touched, and
shares the job store: after `make book` the default study's worlds 0-2 train nothing. It prints,
per world, the steps trained and the targets' figures on validation (the check) and on the test
split, from the notebook's results/base_models.csv. Only the generated world has worlds and
targets: a profile on another source stops with a message.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from .. import base_targets
from ..runner.parameters import PROJECT_ROOT
from .try_it import DEFAULT, params_copy, write_params

STAGE = "00_world_and_base_model"
FOLDER = PROJECT_ROOT / "data" / "bench_worlds"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.tools.bench_worlds",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--params", type=Path, default=DEFAULT, help="the profile whose notebook-00 values to use")
    args = parser.parse_args(argv)
    profile, artifacts = args.params.stem, FOLDER / args.params.stem
    params = params_copy(args.params, str(artifacts), {"seeds": args.worlds, "world_seed": None})
    stage = next(s["parameters"] for s in params["stages"] if Path(s["notebook"]).stem == STAGE)
    if stage.get("source", "generated") != "generated":
        sys.exit(f"{args.params} reads source {stage['source']!r}: only the generated world has worlds and "
                 f"base-model targets")
    copy = write_params(params, FOLDER / "params" / f"{profile}.yaml")
    status = subprocess.run([sys.executable, "-m", "inbol_utils.runner.pipeline", str(copy), "--only", STAGE,
                             "--executed-dir", str(FOLDER / "executed" / profile)], cwd=PROJECT_ROOT).returncode
    if status:
        sys.exit(f"bench-worlds: the runner failed (exit status {status})")
    table = pd.read_csv(artifacts / "results" / base_targets.RESULTS_FILE)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns="seed").round(3).to_string(index=False))
    print(f"{int(table['meets_targets'].sum())} of {len(table)} worlds meet the targets (the table: "
          f"{(artifacts / 'results' / base_targets.RESULTS_FILE).relative_to(PROJECT_ROOT)})")
    return table


if __name__ == "__main__":
    main()
