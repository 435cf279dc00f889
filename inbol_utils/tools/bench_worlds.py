"""Does the base-model recipe meet its targets on any world? One base model per world, printed.

    python -m inbol_utils.tools.bench_worlds [--worlds 0 1 2 3 4] [--artifacts data/bench_worlds] [--workers 0]
                                             [--params params/classroom.yaml]
    make bench-worlds [PARAMS=params/classroom.yaml]   (the same, in the profile's artifacts folder)

Each world w gets the base model of seed w, as the study's replicate w would (with a params file
that fixes `world_seed`, seed w gets that world), built with notebook 00's parameters: its
defaults, or those a params file gives it (`--params`: its `common` and stage-00 values, the rest
left at the notebook's defaults). The world, then base training until the targets hold on
validation or the cap is reached (`protocol.train_base_model`). It prints, per world, the steps
trained and the targets' figures on validation (the check) and on the test split, and writes
the table to <artifacts>/bench_worlds.csv. Jobs are reused like the study's (`reuse`): a rerun
with the same code trains nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .. import base_targets, modeling, protocol, world
from ..runner import parallel
from ..runner.parameters import PROJECT_ROOT
from ..runner.pipeline import load_params, notebook_defaults

NOTEBOOK = PROJECT_ROOT / "notebooks" / "00_world_and_base_model.ipynb"


def world_and_base_model(artifacts: str, seed: int, config: world.WorldConfig, **training) -> dict:
    """Build the seed's world, then train its base model (a job for `parallel.run`)."""
    protocol.build_world(artifacts, seed, config)
    return protocol.train_base_model(artifacts, seed, config, **training)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.tools.bench_worlds",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--artifacts", default="data/bench_worlds")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--params", default=None, help="a params file whose stage-00 values to use")
    args = parser.parse_args(argv)
    p = notebook_defaults(NOTEBOOK)
    if args.params:
        stages = load_params(args.params)["stages"]
        p |= next(stage["parameters"] for stage in stages if stage["stem"] == NOTEBOOK.stem)
    config = world.WorldConfig(n_base_perception=p["n_base_perception"], n_probe=p["n_probe"],
                               n_validation=p["n_validation"], n_test=p["n_test"], n_ood=p["n_ood"],
                               fact_scale=p["fact_scale"], max_difficulty=p["max_difficulty"],
                               knowledge_max_difficulty=p["knowledge_max_difficulty"])
    targets = base_targets.Targets(p["target_easy_perception"], p["target_frequent_facts"])
    size = modeling.ModelSize(vision_width=p["vision_width"], vision_layers=p["vision_layers"],
                              text_width=p["text_width"], text_layers=p["text_layers"])
    world_seed = p.get("world_seed")  # a params file's one world for every seed, if it fixes one
    jobs = [dict(artifacts=args.artifacts, seed=w, config=protocol.world_of(config, w, world_seed), size=size,
                 vision_steps=p["vision_steps"], steps=p["base_steps"], batch_size=p["batch_size"],
                 lr=p["learning_rate"], probe_every=p["probe_every"], more_steps=p["more_base_steps"],
                 max_steps=p["max_base_steps"], targets=targets) for w in args.worlds]
    table = base_targets.report(parallel.run(world_and_base_model, jobs, args.workers), targets, checked=True)
    Path(args.artifacts).mkdir(parents=True, exist_ok=True)
    table.to_csv(Path(args.artifacts) / "bench_worlds.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns="seed").round(3).to_string(index=False))
    print(f"{int(table['meets_targets'].sum())} of {len(table)} worlds meet the targets "
          f"(easy perception >= {targets.easy_perception:g}, frequent facts >= {targets.frequent_facts:g})")
    return table


if __name__ == "__main__":
    main()
