"""An assistant turn as the model's own chat template writes it, for any architecture.

Prompts go through the processor's chat template (`inputs.prompt_text`); training targets,
the stop condition of generation and the reading of answers must follow the same template. Two
things differ between architectures and are read off the template itself: what separates the
generation prompt from the answer (a space after our LLaVA's "assistant:" and SmolVLM's
"Assistant:", nothing after Qwen2-VL's "<|im_start|>assistant\\n"), and what ends the
assistant's turn ("</s>" for our LLaVA, "<|im_end|>" for Qwen2-VL, "<end_of_utterance>" for
Idefics3 and SmolVLM). A tokenizer's end-of-sequence token is not always that marker: the
template is the authority, since it is what the model was trained to produce.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

SENTINEL = "ANSWERSENTINEL"


@dataclass(frozen=True)
class Turn:
    """How an answer sits in the template: prompt + lead + answer + end."""

    lead: str  # between the generation prompt and the answer
    end: str  # the template's end-of-turn marker (what the model must learn to emit, and stop on)


def _conversation(answer: str | None) -> list[dict]:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "question"}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


@functools.lru_cache(maxsize=64)
def turn(processor) -> Turn:
    """Render one exchange with a sentinel answer and read the lead and end marker around it.

    Whitespace after the marker is layout between turns ("<|im_end|>\\n"), not part of it. A
    template that marks no end of turn falls back to the tokenizer's end-of-sequence token.
    """
    prompt = processor.apply_chat_template(_conversation(None), add_generation_prompt=True, tokenize=False)
    full = processor.apply_chat_template(_conversation(SENTINEL), tokenize=False)
    if not full.startswith(prompt) or full.count(SENTINEL) != 1:
        raise ValueError(
            "The processor's chat template does not continue its generation prompt with the "
            f"assistant's turn (prompt {prompt!r}, conversation {full!r}); give the processor a "
            "chat template whose generation prompt is the start of an assistant message.")
    lead, _, after = full[len(prompt):].partition(SENTINEL)
    end = after.rstrip() or processor.tokenizer.eos_token
    if not end:
        raise ValueError("The chat template ends no assistant turn and the tokenizer has no eos_token: "
                         "set tokenizer.eos_token to the token that ends an answer.")
    return Turn(lead=lead, end=end)


def stop_token_ids(processor) -> list[int]:
    """The tokens that end an answer: the template's end-of-turn marker (its first token, if
    it is several) and, where it differs, the tokenizer's end-of-sequence token."""
    tokenizer = processor.tokenizer
    stops = tokenizer(turn(processor).end, add_special_tokens=False)["input_ids"][:1]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in stops:
        stops.append(tokenizer.eos_token_id)
    return stops


def decode_answers(processor, new_tokens: torch.Tensor) -> list[str]:
    """Generated tokens (batch, new) -> answer strings, without template residue: each row is
    cut at its first stop token, special tokens are dropped, and the lead (if the model wrote
    it) and surrounding whitespace are stripped."""
    stops = torch.tensor(stop_token_ids(processor), device=new_tokens.device)
    is_stop = torch.isin(new_tokens, stops)
    lengths = torch.where(is_stop.any(1), is_stop.int().argmax(1), new_tokens.shape[1]).tolist()
    rows = [row[:n] for row, n in zip(new_tokens.tolist(), lengths)]
    texts = processor.tokenizer.batch_decode(rows, skip_special_tokens=True)
    lead = turn(processor).lead.strip()
    return [t.strip().removeprefix(lead).strip() if lead else t.strip() for t in texts]
