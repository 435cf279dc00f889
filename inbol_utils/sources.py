"""Named data sources: where notebook 00 takes its splits from, and what later stages may ask.

  generated  the generated world (the default): every region's ground truth is known
  easy_vqa   easy-VQA, from the installed package (`easy_vqa`)
  datasets   any `datasets` VQA table with image/question/answers columns, at `source_path`
             (a local folder or a hub name in the local cache; `vqa_datasets`)

Every source gives the same row schema (`world.FEATURES`) and the same five splits. The world
folder keeps a record of its source (`source.json`): later notebooks read from it what is
known on this source (`intrinsic_truth`: can the intrinsic boundary be checked against ground
truth?) instead of being told again, and the base model reads its vocabulary from it.
"""
from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import torch

from . import easy_vqa, real_data, vqa_datasets, world
from .artifacts import require
from .vision import VisionTask, world_vision_task

SOURCES = ("generated", "easy_vqa", "datasets")
INFO_FILE = "source.json"


def check(source: str, source_path: str = "") -> None:
    """Stop on an unknown source, or a path given to a source that takes none (or vice versa)."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if (source == "datasets") != bool(source_path):
        raise ValueError("source_path names the dataset of source 'datasets' (a local folder or a "
                         f"hub name) and only that; got source={source!r}, source_path={source_path!r}")


def real_config(config: world.WorldConfig) -> real_data.RealConfig:
    """A real source's split sizes, from the notebook's world parameters of the same meaning
    (n_base_perception caps the base-training questions)."""
    return real_data.RealConfig(seed=config.seed, n_base_train=config.n_base_perception,
                                n_probe=config.n_probe, n_validation=config.n_validation,
                                n_test=config.n_test, n_ood=config.n_ood,
                                unanswerable_share=config.unanswerable_share)


def build(source: str, source_path: str, config: world.WorldConfig, path: str | Path) -> dict[str, datasets.Dataset]:
    """Build the five splits of `source` and save them, with the source's record (and a
    generated world's fact table), to the world folder `path`."""
    check(source, source_path)
    if source == "generated":
        splits, facts = world.build_world(config)
        info = {"source": source, "path": "", "intrinsic_truth": True,
                "constructions": list(world.EXTRINSIC_CONSTRUCTIONS),
                "heldout_constructions": list(config.heldout_constructions),
                "words": sorted(world.world_words())}
        world.save_world(splits, facts, path, {INFO_FILE: info})
        return splits
    if source == "easy_vqa":
        train, test = easy_vqa.tables()
    else:
        train, test = vqa_datasets.tables(source_path, config.seed)
    real = real_config(config)
    splits = real_data.build_splits(train, test, real)
    info = {"source": source, "path": source_path, "intrinsic_truth": False,
            "constructions": [c for c in train.constructions if c in real_data.CONSTRUCTIONS],
            "heldout_constructions": list(real.heldout_constructions),
            "words": sorted(real_data.split_words(splits))}
    world.save_world(splits, None, path, {INFO_FILE: info})
    return splits


def read_info(world_path: str | Path) -> dict:
    """The record of the source a world folder was built from."""
    path = require(Path(world_path) / INFO_FILE, "notebook 00 (world and base model)")
    return json.loads(path.read_text())


SCENES = 6000  # the generated world's pretraining scenes, drawn from with replacement


def vision_task(world_path: str | Path, config: world.WorldConfig, seed: int,
                draws: int = SCENES) -> VisionTask | None:
    """What the vision tower is pretrained on before it is frozen: the generated world's
    per-cell colours and shapes on fresh scenes, easy-VQA's per-image colour and shape on the
    base-train images (derived from its questions); None for a source with no image labels.
    A pretraining that draws fewer than `SCENES` images gets only as many scenes as it draws:
    rendering the rest took the smoke run's 10 steps 3 s a seed."""
    info = read_info(world_path)
    if info["source"] == "generated":
        return world_vision_task(np.random.default_rng([seed, 99]), config, min(SCENES, draws))
    if info["source"] == "easy_vqa":
        base = world.load_split(world_path, "base_train")
        labels = easy_vqa.vision_labels(base["entity"])
        return VisionTask(list(base["image"]), {k: torch.tensor(v)[:, None] for k, v in labels.items()},
                          {"colour": len(easy_vqa.COLOURS), "shape": len(easy_vqa.SHAPES)}, grid=1)
    return None
