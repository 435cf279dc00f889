"""The study's two InBoL training stages as plain functions: load, train, save.

Chapter 3 runs them for the main comparison, chapter 4 again for the ablations, and
`python -m inbol_utils.recipes` runs them as a script, so `accelerate launch` or `torchrun`
can train data-parallel with the very same code.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import datasets
import pandas as pd
import torch
from accelerate import PartialState

from . import dpo, idk_data, modeling
from .generation import response_logprobs, training_batch
from .training import loss_log, train_sft, training_arguments


@dataclass
class PreferenceCollator:
    """Preference rows -> the batch `dpo.CADPOTrainer` reads: B chosen rows, then B rejected."""

    processor: object

    def __call__(self, rows: list[dict]) -> dict:
        images = [r["image"] for r in rows] * 2
        questions = [r["question"] for r in rows] * 2
        responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
        batch = training_batch(self.processor, images, questions, responses)
        batch["pair_weight"] = torch.tensor([r["pair_weight"] for r in rows], dtype=torch.float32)
        batch["pair_margin"] = torch.tensor([r["pair_margin"] for r in rows], dtype=torch.float32)
        return batch


def with_pair_terms(pairs: datasets.Dataset, tau: float, ca_mode: str) -> datasets.Dataset:
    """Add each pair's CA-DPO weight and margin, computed from its confidence."""
    weights, margins = dpo.pair_terms(torch.tensor(pairs["confidence"]), tau, ca_mode)
    return pairs.add_column("pair_weight", weights.tolist()).add_column("pair_margin", margins.tolist())


def lora(model, rank: int):
    """Wrap the language model's attention projections in LoRA adapters (for large models);
    the vision encoder stays frozen and adapter-free."""
    from peft import LoraConfig, get_peft_model

    target = r".*language_model.*\.(q_proj|v_proj)"
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=target))


def run_folder(out: str | Path) -> str:
    """Trainer's scratch folder for a run: beside the saved models, not mixed in with them."""
    return str(Path(out).parent / "runs" / Path(out).name)


def trainable(path: str | Path, lora_rank: int):
    """Load a model to fine-tune: training mode, vision encoder frozen, LoRA adapters if asked."""
    model, processor = modeling.load(path)
    model.train()
    modeling.freeze_vision(model)
    return (lora(model, lora_rank) if lora_rank else model), processor


def save_trained(model, processor, out: str | Path, args, lora_rank: int) -> None:
    """Save in the hub format (adapters merged), from one process under data-parallel runs."""
    if args.process_index == 0:
        modeling.save(model.merge_and_unload() if lora_rank else model, processor, out)


def train_idk_it(base: str | Path, instructions: datasets.Dataset, out: str | Path, steps: int,
                 lr: float, batch_size: int, seed: int, lora_rank: int = 0) -> pd.DataFrame:
    """IDK instruction tuning: supervised fine-tuning on answers and refusals (response tokens
    only), from the base model; saved in the hub format. Returns the training log."""
    model, processor = trainable(base, lora_rank)
    args = training_arguments(run_folder(out), steps, batch_size, lr, seed)
    log = train_sft(model, processor, instructions, args)
    save_trained(model, processor, out, args, lora_rank)
    return log


def train_preferences(policy: str | Path, pairs: datasets.Dataset, out: str | Path, steps: int,
                      lr: float, batch_size: int, seed: int, beta: float, tau: float,
                      ca_mode: str, sft_weight: float = 0.0, lora_rank: int = 0) -> pd.DataFrame:
    """(CA-)DPO from `policy`, which is also the frozen reference (the IDK-IT model)."""
    model, processor = trainable(policy, lora_rank)
    reference, _ = modeling.load(policy)
    args = training_arguments(run_folder(out), steps, batch_size, lr, seed)
    trainer = dpo.CADPOTrainer(model=model, args=args, ref_model=reference, beta=beta,
                               sft_weight=sft_weight, train_dataset=with_pair_terms(pairs, tau, ca_mode),
                               data_collator=PreferenceCollator(processor))
    trainer.train()
    model.eval()
    save_trained(model, processor, out, args, lora_rank)
    return loss_log(trainer)


def preference_agreement(model, processor, pairs: datasets.Dataset) -> float:
    """Share of pairs whose chosen response the model finds more likely than the rejected one:
    a preference accuracy that needs no reference model, so any two models compare."""
    images, questions = list(pairs["image"]), pairs["question"]
    chosen = response_logprobs(model, processor, images, questions, pairs["chosen"])
    rejected = response_logprobs(model, processor, images, questions, pairs["rejected"])
    return float((chosen > rejected).float().mean())


def main(argv: list[str] | None = None) -> None:
    """Command line for data-parallel runs, e.g.
    accelerate launch -m inbol_utils.recipes idk-it --base data/default/base_model ..."""
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.recipes")
    parser.add_argument("stage", choices=["idk-it", "dpo"])
    parser.add_argument("--model", required=True, help="base model (idk-it) or IDK-IT model (dpo)")
    parser.add_argument("--data", required=True, help="idk_it or preferences folder from notebook 02")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--tau", type=float, default=0.5)
    parser.add_argument("--ca-mode", default="weight", choices=dpo.CA_MODES)
    parser.add_argument("--lora-rank", type=int, default=0)
    args = parser.parse_args(argv)
    if args.stage == "idk-it":
        data = idk_data.load(args.data, idk_data.IDK_FEATURES, "IDK-IT set")
        train_idk_it(args.model, data, args.out, args.steps, args.lr, args.batch_size, args.seed,
                     args.lora_rank)
    else:
        data = idk_data.load(args.data, idk_data.PREFERENCE_FEATURES, "preference set")
        train_preferences(args.model, data, args.out, args.steps, args.lr, args.batch_size,
                          args.seed, args.beta, args.tau, args.ca_mode, lora_rank=args.lora_rank)
    state = PartialState()
    if state.is_main_process:
        print(f"{args.stage}: saved {args.out}, trained by {state.num_processes} process(es)")


if __name__ == "__main__":
    main()
