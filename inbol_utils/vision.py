"""Pretraining the vision tower, as real LLaVA starts from a pretrained CLIP encoder.

Trained end to end from scratch through the language model, a tiny vision tower learns colour
and count (strong, low-order signals) and loses shape: a linear probe on its outputs finds
shape near chance although the raw pixels give it away almost perfectly. Real LLaVA never meets
this problem because its CLIP tower arrives pretrained and stays frozen. We do the same: first
train the tower alone to name the colour and shape in every grid cell (plain supervised
classification on freshly generated scenes), then freeze it while the MLLM trains.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from . import profiling
from .modeling import freeze_vision
from .world import COLOURS, SHAPES, WorldConfig, random_scene, render


def cell_features(hidden: torch.Tensor, image_size: int, patch_size: int) -> torch.Tensor:
    """Patch tokens (batch, patches, width) averaged per grid cell -> (batch, 4, width)."""
    side = image_size // patch_size
    grid = hidden.reshape(hidden.shape[0], 2, side // 2, 2, side // 2, -1)
    return grid.mean(dim=(2, 4)).reshape(hidden.shape[0], 4, -1)


def scene_labels(rng: np.random.Generator, cfg: WorldConfig, n: int):
    """n rendered scenes with per-cell colour and shape labels (index len(...) means empty)."""
    images, colours, shapes = [], np.full((n, 4), len(COLOURS)), np.full((n, 4), len(SHAPES))
    names = list(COLOURS)
    for i in range(n):
        scene = random_scene(rng, cfg)
        images.append(render(scene, rng))
        for obj in scene.objects:
            colours[i, obj.cell] = names.index(obj.colour)
            shapes[i, obj.cell] = SHAPES.index(obj.shape)
    return images, torch.tensor(colours), torch.tensor(shapes)


@profiling.part("training")
def pretrain_vision_tower(model, processor, cfg: WorldConfig, steps: int, batch_size: int = 64,
                          lr: float = 2e-3, n_scenes: int = 6000, seed: int = 0,
                          progress: bool = True) -> list[float]:
    """Train `model`'s vision tower to classify each cell's colour and shape; then freeze it.
    Returns the per-step accuracy (mean of colour and shape over cells) for the notebook."""
    tower = model.model.vision_tower
    vcfg = tower.config
    width = vcfg.hidden_size
    heads = nn.ModuleDict({"colour": nn.Linear(width, len(COLOURS) + 1), "shape": nn.Linear(width, len(SHAPES) + 1)})
    rng = np.random.default_rng([seed, 99])
    images, colours, shapes = scene_labels(rng, cfg, n_scenes)
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    params = list(tower.parameters()) + list(heads.parameters())
    optimiser = torch.optim.AdamW(params, lr=lr)
    schedule = get_cosine_schedule_with_warmup(optimiser, max(1, steps // 10), steps)
    torch.manual_seed(seed)
    tower.train()
    accuracy = []
    for _ in tqdm(range(steps), desc="vision pretraining", disable=not progress):
        idx = torch.randint(0, n_scenes, (batch_size,))
        hidden = tower(pixels[idx].to(tower.device)).last_hidden_state[:, 1:]
        feats = cell_features(hidden, vcfg.image_size, vcfg.patch_size)
        logits_c, logits_s = heads["colour"](feats), heads["shape"](feats)
        target_c, target_s = colours[idx].to(feats.device), shapes[idx].to(feats.device)
        loss = nn.functional.cross_entropy(logits_c.flatten(0, 1), target_c.flatten()) + \
            nn.functional.cross_entropy(logits_s.flatten(0, 1), target_s.flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        hits = (logits_c.argmax(-1) == target_c).float().mean() + (logits_s.argmax(-1) == target_s).float().mean()
        accuracy.append(hits.item() / 2)
    tower.eval()
    freeze_vision(model)
    return accuracy
