"""Shared fixtures: a tiny world and a tiny untrained LLaVA, built once per session."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from inbol_utils import answers, modeling, world

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_world():
    return world.build_world(world.small_config(seed=3))


@pytest.fixture(scope="session")
def processor():
    return modeling.build_processor(world.world_words() | answers.refusal_words(),
                                    modeling.ModelSize())


@pytest.fixture(scope="session")
def tiny_model(processor):
    size = modeling.ModelSize(vision_width=32, vision_layers=1, text_width=32, text_layers=2)
    return modeling.build_model(processor, size, seed=0).eval()
