"""Pretraining the vision tower, as real LLaVA starts from a pretrained CLIP encoder.

Trained end to end from scratch through the language model, a tiny vision tower learns colour
and count (strong, low-order signals) and loses shape: a linear probe on its outputs finds
shape near chance although the raw pixels give it away almost perfectly. Real LLaVA never meets
this problem because its CLIP tower arrives pretrained and stays frozen. We do the same: first
train the tower alone to name the colour and shape in every grid cell (plain supervised
classification on freshly generated scenes), then freeze it while the MLLM trains. A real
source supplies its own labels where it has them (easy-VQA: each image's colour and shape).

On a grid, the tower also learns to name the cell each feature comes from. The attribute heads
are shared by the cells, so nothing else asks its features to keep their position, and a
frozen tower that drops it leaves the language model to guess where an object is: "where is
the red circle" stalled near 60% on easy scenes, whatever the training length, while every
other perception question reached 95-100%. (RoPE marks the image tokens' positions in the
attention scores only, not in what attention reads from them.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .runner import profiling
from .modeling import freeze_vision
from .world import COLOURS, SHAPES, WorldConfig, random_scene, render

IGNORE = -100  # a label the source does not know: left out of the loss and the accuracy
BATCH_SIZE = 64  # images per pretraining step


@dataclass
class VisionTask:
    """Images, and per-cell class labels for each attribute: `labels[name]` is (images,
    grid * grid) class indices out of `classes[name]` (IGNORE where not known)."""

    images: list[Image.Image]
    labels: dict[str, torch.Tensor]
    classes: dict[str, int]
    grid: int  # cells per side: 2 for the world's 2x2 grid, 1 for one label per image


def cell_features(hidden: torch.Tensor, image_size: int, patch_size: int, grid: int = 2) -> torch.Tensor:
    """Patch tokens (batch, patches, width) averaged per grid cell -> (batch, grid * grid, width)."""
    side = image_size // patch_size
    cells = hidden.reshape(hidden.shape[0], grid, side // grid, grid, side // grid, -1)
    return cells.mean(dim=(2, 4)).reshape(hidden.shape[0], grid * grid, -1)


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


def world_vision_task(rng: np.random.Generator, cfg: WorldConfig, n: int) -> VisionTask:
    """The generated world's task: colour and shape (or empty) of each of the 2x2 cells."""
    images, colours, shapes = scene_labels(rng, cfg, n)
    return VisionTask(images, {"colour": colours, "shape": shapes},
                      {"colour": len(COLOURS) + 1, "shape": len(SHAPES) + 1}, grid=2)


@profiling.part("training")
def pretrain_vision_tower(model, processor, task: VisionTask, steps: int, batch_size: int = BATCH_SIZE,
                          lr: float = 2e-3, seed: int = 0, progress: bool = True) -> list[float]:
    """Train `model`'s vision tower to classify each cell's attributes and, on a grid, which
    cell it is; then freeze it. Returns the per-step accuracy (mean over the attributes of the
    known cells; the cell's own position, learnt at once, is left out) for the notebook."""
    tower = model.model.vision_tower
    vcfg = tower.config
    width = vcfg.hidden_size
    heads = nn.ModuleDict({name: nn.Linear(width, n) for name, n in task.classes.items()})
    cells = task.grid * task.grid
    position = nn.Linear(width, cells) if cells > 1 else None
    pixels = processor.image_processor(task.images, return_tensors="pt")["pixel_values"]
    params = list(tower.parameters()) + list(heads.parameters()) + (list(position.parameters()) if position else [])
    optimiser = torch.optim.AdamW(params, lr=lr)
    schedule = get_cosine_schedule_with_warmup(optimiser, max(1, steps // 10), steps)
    torch.manual_seed(seed)
    tower.train()
    accuracy = []
    for _ in tqdm(range(steps), desc="vision pretraining", disable=not progress):
        idx = torch.randint(0, len(task.images), (batch_size,))
        hidden = tower(pixels[idx].to(tower.device)).last_hidden_state[:, 1:]
        feats = cell_features(hidden, vcfg.image_size, vcfg.patch_size, task.grid)
        loss, hits, scored = 0.0, 0.0, 0
        for name, head in heads.items():
            logits, target = head(feats), task.labels[name][idx].to(feats.device)
            known = target != IGNORE
            if not known.any():  # a batch with no known label of this attribute: nothing to learn
                continue
            loss = loss + nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE)
            hits, scored = hits + (logits.argmax(-1) == target)[known].float().mean().item(), scored + 1
        if not scored:
            continue
        if position is not None:  # every cell names itself: its features keep where they come from
            loss = loss + nn.functional.cross_entropy(position(feats).flatten(0, 1),
                                                      torch.arange(cells, device=feats.device).repeat(len(idx)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        accuracy.append(hits / scored)
    tower.eval()
    freeze_vision(model)
    return accuracy
