"""From dataset rows to model inputs: prompts, responses, labels, batches and both collators.

Every path from a row (image, question, response) to tokens goes through here, so that
training, scoring and the likelihood probe can never disagree about where an answer starts.

A prompt is the model's own chat template around one image and one question, ending where the
answer begins (`prompt_text`); a response is what follows it in a training example, as the
template writes an assistant turn: the response and the template's end-of-turn marker
(`response_text`, `chat.turn`). Batches come in two formats:

Supervised batch (`labelled_batch`, `SFTCollator`), for B rows:
  input_ids, attention_mask  (B, T): prompt + response, padded on the right
  pixel_values  (B, 3, H, W), and any other input the processor makes for a multimodal model
  labels  (B, T): the input ids on the response tokens and the end-of-turn marker, IGNORE_INDEX on the
      prompt and the padding, so the loss (and a sequence's log-probability) covers the response only

Preference batch (`PreferenceCollator`, what `dpo.CADPOTrainer` reads), for B pairs:
  the supervised batch of 2B rows: rows 0..B-1 prompt + chosen response, rows B..2B-1 the same
      prompts + rejected response
  pair_weight, pair_margin  (B,): each pair's CA-DPO weight and margin (`dpo.pair_terms`)
Every key except those of NON_MODEL_KEYS is passed to the model (`model_inputs`).

Generation pads on the left instead (`encode(..., "left")`): new tokens then line up at the end.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import torch
from PIL import Image

from . import chat
from .runner import profiling

IGNORE_INDEX = -100  # the label of a position the loss skips (the Hugging Face convention)
NON_MODEL_KEYS = ("labels", "pair_weight", "pair_margin")


@functools.lru_cache(maxsize=1 << 16)
def prompt_text(processor, question: str) -> str:
    """The model's own chat template around one image and one question, ready for an answer.
    Cached: a split asks the same few hundred questions thousands of times, and rendering the
    Jinja template costs as much as a tenth of a teacher-forced pass of the tiny model."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def response_text(processor, response: str) -> str:
    """What follows the prompt in a training example: the response as the chat template writes
    an assistant turn, ended by the template's own end-of-turn marker (`chat.turn`)."""
    turn = chat.turn(processor)
    return f"{turn.lead}{response}{turn.end}"


def encode(processor, images: Sequence[Image.Image], texts: Sequence[str], padding_side: str,
           device) -> dict[str, torch.Tensor]:
    """Images and full texts through the processor, padded on `padding_side`, on `device`."""
    processor.tokenizer.padding_side = padding_side
    batch = processor(images=list(images), text=list(texts), padding=True, return_tensors="pt")
    profiling.count_tokens(batch["attention_mask"].sum(), len(texts))
    return {k: v.to(device) for k, v in batch.items()}


def labelled_batch(processor, images: Sequence[Image.Image], questions: Sequence[str],
                   responses: Sequence[str], device="cpu") -> dict[str, torch.Tensor]:
    """A supervised batch (module docstring): prompt + response, labels on the response only.

    The chat template puts the response last, so its tokens are the last ones of each row:
    counting them (tokenised alone) marks where the labels start, with one processor call.
    """
    full = [prompt_text(processor, q) + response_text(processor, r) for q, r in zip(questions, responses)]
    batch = encode(processor, images, full, "right", device)
    suffixes = [response_text(processor, r) for r in responses]
    n_response = torch.tensor([len(ids) for ids in
                               processor.tokenizer(suffixes, add_special_tokens=False)["input_ids"]],
                              device=batch["input_ids"].device)
    lengths = batch["attention_mask"].sum(1)
    positions = torch.arange(batch["input_ids"].shape[1], device=lengths.device)[None, :]
    is_response = (positions >= (lengths - n_response)[:, None]) & (positions < lengths[:, None])
    batch["labels"] = batch["input_ids"].masked_fill(~is_response, IGNORE_INDEX)
    return batch


def model_inputs(batch: dict) -> dict:
    """The keys of a batch that the model takes (labels and pair terms are scored outside it)."""
    return {k: v for k, v in batch.items() if k not in NON_MODEL_KEYS}


@dataclass
class SFTCollator:
    """Rows with `image`, `question` and `response` -> a supervised batch."""

    processor: object

    def __call__(self, rows: list[dict]) -> dict:
        return labelled_batch(self.processor, [r["image"] for r in rows], [r["question"] for r in rows],
                              [r["response"] for r in rows])


@dataclass
class PreferenceCollator:
    """Preference rows (`chosen`, `rejected`, `pair_weight`, `pair_margin`) -> a preference
    batch: B chosen rows, then the same B prompts with their rejected responses."""

    processor: object

    def __call__(self, rows: list[dict]) -> dict:
        images = [r["image"] for r in rows] * 2
        questions = [r["question"] for r in rows] * 2
        responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
        batch = labelled_batch(self.processor, images, questions, responses)
        batch["pair_weight"] = torch.tensor([r["pair_weight"] for r in rows], dtype=torch.float32)
        batch["pair_margin"] = torch.tensor([r["pair_margin"] for r in rows], dtype=torch.float32)
        return batch
