"""Supervised training on (image, question, response) rows: the base model and IDK-IT.

Built on transformers' `Trainer`, so `accelerate launch` or `torchrun` runs the same code
data-parallel. The loss sits on response tokens only: the template tokens are easy and
would hide the answer's loss (a fragile tiny ViT can look converged while colours merge).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import datasets
import pandas as pd
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from .runner import profiling
from .inputs import SFTCollator


@dataclass
class ProbeCallback(TrainerCallback):
    """Every `every` steps, run `probe(model)` (e.g. greedy accuracy per question type, or
    Trust on the validation split) and keep the result: accuracy per type says what the model
    has learnt; the averaged loss does not.

    Checkpoint selection: with `select_on`, the weights with the highest value of that key are
    kept and restored at the end of training (ties keep the earlier step). With `stop_at`,
    training stops at that step while the learning-rate schedule stays the one of `max_steps`:
    "train for s steps" then means the same model as "checkpoint s of the selection run".
    """

    probe: Callable[[object], dict[str, float]] | None
    every: int
    select_on: str | None = None
    stop_at: int | None = None
    history: list[dict] = field(default_factory=list)
    best_step: int | None = None
    _best_value: float | None = None
    _best_state: dict | None = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        last = step == state.max_steps or step == self.stop_at
        if self.probe is not None and (step % self.every == 0 or last):
            was_training = model.training
            self.history.append({"step": step, **self.probe(model)})
            model.train(was_training)
            if self.select_on is not None:
                self._keep_if_best(model, step)
        if self.stop_at is not None and step >= self.stop_at:
            control.should_training_stop = True

    def _keep_if_best(self, model, step: int) -> None:
        value = self.history[-1][self.select_on]
        if self._best_value is None or value > self._best_value:
            self.best_step, self._best_value = step, value
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self._best_state is not None:
            model.load_state_dict(self._best_state)


def training_arguments(output_dir: str, steps: int, batch_size: int, lr: float, seed: int,
                       warmup_ratio: float = 0.05, logging_steps: int | None = None,
                       config_class: type[TrainingArguments] = TrainingArguments,
                       **overrides) -> TrainingArguments:
    """AdamW with warmup and cosine decay; nothing saved mid-run, nothing reported online.
    By default about 50 log points per run, whatever its length. `config_class` may extend
    TrainingArguments (`dpo.CADPOConfig`): its own fields come in `overrides`."""
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need steps >= 1, batch_size >= 1 and lr > 0; got {steps}, {batch_size}, {lr}")
    settings = dict(
        output_dir=output_dir, max_steps=steps, per_device_train_batch_size=batch_size,
        learning_rate=lr, warmup_steps=max(1, int(warmup_ratio * steps)), lr_scheduler_type="cosine",
        weight_decay=0.0, logging_steps=logging_steps or max(1, steps // 50), save_strategy="no", report_to=[],
        remove_unused_columns=False, seed=seed, data_seed=seed, dataloader_num_workers=0,
        disable_tqdm=False,
        # Without a GPU, say so: only then do torchrun / accelerate launch processes form a
        # gloo group on the CPU instead of each training alone as "rank 0".
        use_cpu=not torch.cuda.is_available(),
    )
    return config_class(**{**settings, **overrides})


def train_sft(model, processor, dataset: datasets.Dataset, args: TrainingArguments,
              callbacks: list[TrainerCallback] = ()) -> pd.DataFrame:
    """Train in place; return the logged history (step, loss, learning rate) as a frame."""
    trainer = Trainer(model=model, args=args, train_dataset=dataset,
                      data_collator=SFTCollator(processor), callbacks=list(callbacks))
    with profiling.part("training"):
        trainer.train()
    model.eval()
    return loss_log(trainer)


def train_sft_until(model, processor, dataset: datasets.Dataset, arguments: Callable[[int, int], TrainingArguments],
                    probe: Callable[[object], dict[str, float]], every: int, done: Callable[[dict], bool],
                    first_steps: int, more_steps: int, max_steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train in rounds until `done(probe(model))` holds at the end of a round, or `max_steps`.

    The first round is `first_steps` long, each later one `more_steps` (cut at `max_steps`),
    each with its own warmup and cosine decay (`arguments(steps, round)`): every check is of
    an annealed model, and a model that meets its goal in the first round is exactly the one a
    fixed schedule of `first_steps` gives. `probe` also runs every `every` steps, for the
    curve. Returns the loss log and the probe's curve, steps counted from the first round.
    """
    logs, curves, trained, round_ = [], [], 0, 0
    while True:
        steps = first_steps if round_ == 0 else min(more_steps, max_steps - trained)
        callback = ProbeCallback(probe, every)
        log = train_sft(model, processor, dataset, arguments(steps, round_), [callback])
        logs.append(log.assign(step=log["step"] + trained, round=round_))
        curves.append(pd.DataFrame(callback.history).assign(step=lambda f: f["step"] + trained, round=round_))
        trained += steps
        if done(callback.history[-1]) or trained >= max_steps:
            return pd.concat(logs, ignore_index=True), pd.concat(curves, ignore_index=True)
        round_ += 1


def loss_log(trainer: Trainer) -> pd.DataFrame:
    """The logged training steps (loss and whatever the trainer logs beside it) as a frame."""
    return pd.DataFrame([h for h in trainer.state.log_history if "loss" in h])
