"""The study's training stages as plain functions: load, train, save.

IDK-IT, the preference stage ((CA-)DPO) and the compute-matched control (IDK-IT trained further
on the preference pairs' chosen responses). Chapter 3 runs them for the main comparison (through
`protocol`), chapter 4 again for the ablations, and `python -m inbol_utils.recipes` runs them as
a script, so `accelerate launch` or `torchrun` can train data-parallel with the very same code.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import datasets
import pandas as pd
from accelerate import PartialState
from transformers import TrainingArguments

from . import dpo, idk_data, modeling
from .runner import profiling
from .training import loss_log, train_sft, training_arguments

PREFERENCES_FROM = "notebook 03 (training: on-policy pairs) or 02 (base-sampled pairs)"


def load_pairs(path: str | Path, args: dpo.CADPOConfig | None = None) -> datasets.Dataset:
    """A saved preference set; with `args`, each pair's CA-DPO weight and margin under its
    knobs, computed with the tau of the labelling saved beside the pairs: the pairs and their
    weights can never disagree about the threshold."""
    pairs = idk_data.load(path, idk_data.PREFERENCE_FEATURES, "preference set", PREFERENCES_FROM)
    return pairs if args is None else dpo.with_pair_terms(pairs, idk_data.load_labelling(path)["tau"], args)


def arguments(out: str | Path, steps: int, lr: float, batch_size: int, seed: int, quiet: bool = False,
              config_class: type[TrainingArguments] = TrainingArguments, **knobs) -> TrainingArguments:
    """The Trainer arguments of a run that saves to `out` (`training.training_arguments`, its
    scratch folder beside the saved models); `config_class=dpo.CADPOConfig` with the
    preference stage's knobs (beta, anchor_weight, ca_mode, ca_signal)."""
    return training_arguments(run_folder(out), steps, batch_size, lr, seed, config_class=config_class,
                              disable_tqdm=quiet, **knobs)


def lora(model, rank: int):
    """Wrap the language model's attention projections in LoRA adapters (for large models);
    the vision encoder stays frozen and adapter-free."""
    from peft import LoraConfig, get_peft_model

    target = r".*(language_model|text_model).*\.(q_proj|v_proj)"  # text_model: Idefics3, SmolVLM
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


def train_idk_it(base: str | Path, instructions: datasets.Dataset, out: str | Path,
                 args: TrainingArguments, lora_rank: int = 0, callbacks=()) -> pd.DataFrame:
    """IDK instruction tuning: supervised fine-tuning on answers and refusals (response tokens
    only), from the base model; saved in the hub format. Returns the training log."""
    model, processor = trainable(base, lora_rank)
    log = train_sft(model, processor, instructions, args, list(callbacks))
    save_trained(model, processor, out, args, lora_rank)
    return log


def train_control(policy: str | Path, pairs: datasets.Dataset, out: str | Path,
                  args: TrainingArguments, lora_rank: int = 0, callbacks=()) -> pd.DataFrame:
    """The compute-matched control: `policy` (the IDK-IT model) trained further, by plain SFT,
    on the chosen responses of the preference pairs (each query's chosen response once). It
    sees the same prompts and targets as the preference stage, without the rejected side:
    what it gains is "more training"; what DPO gains beyond it is the preferences."""
    frame = pairs.remove_columns("image").to_pandas()
    once = frame.drop_duplicates(["id", "chosen"]).index.tolist()
    return train_idk_it(policy, pairs.select(once).rename_column("chosen", "response"), out, args,
                        lora_rank, callbacks)


def train_preferences(policy: str | Path, pairs: datasets.Dataset, out: str | Path,
                      args: dpo.CADPOConfig, lora_rank: int = 0, callbacks=()) -> pd.DataFrame:
    """(CA-)DPO from `policy`, which is also the frozen reference (the IDK-IT model), under
    `args`' knobs. `pairs` carry their weights and margins (`load_pairs(path, args)`): all
    ones and zeros for vanilla DPO."""
    model, processor = trainable(policy, lora_rank)
    reference, _ = modeling.load(policy)
    trainer = dpo.CADPOTrainer(model=model, args=args, ref_model=reference, processing_class=processor,
                               train_dataset=pairs, callbacks=list(callbacks))
    with profiling.part("training"):
        trainer.train()
    model.eval()
    save_trained(model, processor, out, args, lora_rank)
    return loss_log(trainer)


def main(argv: list[str] | None = None) -> None:
    """Command line for data-parallel runs, e.g.
    accelerate launch -m inbol_utils.recipes idk-it --model data/default/seed0/base_model ..."""
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.recipes")
    parser.add_argument("stage", choices=["idk-it", "dpo", "control"])
    parser.add_argument("--model", required=True,
                        help="base model (idk-it) or IDK-IT model (dpo, control)")
    parser.add_argument("--data", required=True,
                        help="an idk_it folder (notebook 02) or a preferences folder (notebook 03); "
                             "tau comes from the labelling saved beside the data")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--seed", type=int, default=0)
    knobs = dpo.CADPOConfig  # the preference stage's defaults live there
    parser.add_argument("--beta", type=float, default=knobs.beta)
    parser.add_argument("--anchor-weight", type=float, default=knobs.anchor_weight)
    parser.add_argument("--ca-mode", default=knobs.ca_mode, choices=dpo.CA_MODES)
    parser.add_argument("--ca-signal", default=knobs.ca_signal, choices=dpo.CA_SIGNALS)
    parser.add_argument("--lora-rank", type=int, default=0)
    args = parser.parse_args(argv)
    settings = dict(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    if args.stage == "idk-it":
        data = idk_data.load(args.data, idk_data.IDK_FEATURES, "IDK-IT set")
        train_idk_it(args.model, data, args.out, arguments(args.out, **settings), args.lora_rank)
    elif args.stage == "control":
        train_control(args.model, load_pairs(args.data), args.out, arguments(args.out, **settings),
                      args.lora_rank)
    else:
        config = arguments(args.out, **settings, config_class=dpo.CADPOConfig, beta=args.beta,
                           anchor_weight=args.anchor_weight, ca_mode=args.ca_mode, ca_signal=args.ca_signal)
        train_preferences(args.model, load_pairs(args.data, config), args.out, config, args.lora_rank)
    state = PartialState()
    if state.is_main_process:
        print(f"{args.stage}: saved {args.out}, trained by {state.num_processes} process(es)")


if __name__ == "__main__":
    main()
