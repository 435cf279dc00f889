"""Batched answers and exact answer probabilities, for any image-text-to-text model.

Everything goes through the processor and `model.generate`, so the same functions serve the
tiny LLaVA and a hub model. Rows become inputs in `inputs`: generation pads on the left (new
tokens line up at the end), teacher forcing pads on the right (labels line up with the inputs).
"""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image
from tqdm.auto import tqdm

from . import chat
from .runner import profiling
from .inputs import encode, labelled_batch, prompt_text
from .logprobs import sequence_logps


def _batches(n: int, batch_size: int, desc: str | None):
    starts = range(0, n, batch_size)
    return tqdm(starts, desc=desc, leave=False) if desc else starts


@torch.no_grad()
def generate_answers(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
                     num_samples: int = 1, temperature: float = 0.0, batch_size: int = 64,
                     max_new_tokens: int = 8, seed: int = 0, desc: str | None = None,
                     share_prompt: bool | None = None,
                     bad_words_ids: list[list[int]] | None = None) -> list[list[str]]:
    """`num_samples` answers per question: greedy when temperature is 0, otherwise pure
    ancestral samples at `temperature` (no top-k or top-p, so a sample's chance of being right
    is exactly the model's probability of the right answer). The samples of a question share
    its prompt's cache (`prefill_shared_prompt`) where the architecture allows it
    (`SHARED_PROMPT_MODELS`, the default `share_prompt=None`); `share_prompt=False` leaves it to
    transformers' `num_return_sequences`, for a model whose cache cannot be repeated.
    `bad_words_ids` (token-id sequences, as transformers' `generate` takes them) are never
    generated: the model's best answer when it may not start a refusal (`frontier`)."""
    if temperature < 0 or num_samples < 1:
        raise ValueError(f"need temperature >= 0 and num_samples >= 1, got {temperature}, {num_samples}")
    sample = temperature > 0
    options = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if sample else \
        dict(do_sample=False, temperature=None, top_k=None, top_p=None)
    if not sample and num_samples > 1:
        raise ValueError("greedy decoding gives one answer per question; set temperature > 0")
    if share_prompt is None:
        share_prompt = model.config.model_type in SHARED_PROMPT_MODELS
    torch.manual_seed(seed)
    model.eval()
    tokenizer = processor.tokenizer
    questions = list(questions)  # a `datasets` column re-reads its table on every slice
    answers: list[list[str]] = []
    with profiling.part("sampling" if sample else "greedy answers"):
        for start in _batches(len(questions), batch_size, desc):
            stop = start + batch_size
            prompts = [prompt_text(processor, q) for q in questions[start:stop]]
            batch = encode(processor, images[start:stop], prompts, "left", model.device)
            copies = {}
            if num_samples > 1 and share_prompt:
                batch = prefill_shared_prompt(model, batch, num_samples)
            elif num_samples > 1:
                copies = {"num_return_sequences": num_samples}  # the prompt goes through N times
                profiling.count_tokens((num_samples - 1) * batch["attention_mask"].sum())
            out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=chat.stop_token_ids(processor), bad_words_ids=bad_words_ids,
                                 **options, **copies)
            new = out[:, batch["input_ids"].shape[1]:]
            profiling.count_tokens((new != tokenizer.pad_token_id).sum(), decoded=True)
            texts = chat.decode_answers(processor, new)
            answers += [texts[i:i + num_samples] for i in range(0, len(texts), num_samples)]
    return answers


# Architectures whose prompt cache may be computed once and repeated for every sample: their
# positions are plain token positions (tests check each against num_return_sequences).
# Qwen2-VL's multimodal rotary positions are computed inside the model and kept from batch to
# batch (rope_deltas), so it samples through num_return_sequences.
SHARED_PROMPT_MODELS = ("llava", "idefics3")


def prefill_shared_prompt(model, batch: dict[str, torch.Tensor], num_samples: int) -> dict:
    """Run each prompt through the model once and give its cache to all `num_samples` samples.

    `generate(num_return_sequences=N)` copies every prompt N times before its first pass, so
    the image and the prompt (about 14 tokens, most of a sample's work: an answer is 2 to 4)
    are computed N times over. Here all but the prompt's last token go through the model once;
    `generate` then restarts from the repeated cache and computes only that last token per
    sample. Same model, same random draws: the tokens equal those of num_return_sequences
    (tests/test_modeling.py), at about a third of the cost for N=10.
    """
    ids, mask = batch["input_ids"], batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens only
    images = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
    prefix = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
                   **images, use_cache=True)
    prefix.cache.batch_repeat_interleave(num_samples)
    return {"input_ids": ids.repeat_interleave(num_samples, 0),
            "attention_mask": mask.repeat_interleave(num_samples, 0), "cache": prefix.cache}


def greedy_answers(model, processor, images, questions, **kwargs) -> list[str]:
    return [a[0] for a in generate_answers(model, processor, images, questions, **kwargs)]


@torch.no_grad()
def response_logprobs(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
                      responses: Sequence[str], batch_size: int = 128,
                      desc: str | None = None) -> torch.Tensor:
    """log p(response + end of turn | image, question), one teacher-forced pass per batch.

    Rows are batched in order of length so that little of each pass is spent on padding (the
    pass is compute-bound on CPU); results come back in the callers' order.
    """
    model.eval()
    questions, responses = list(questions), list(responses)
    texts = [q + " " + r for q, r in zip(questions, responses)]
    lengths = [len(ids) for ids in processor.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(questions)), key=lengths.__getitem__)
    out = torch.zeros(len(questions))
    with profiling.part("likelihoods"):
        for start in _batches(len(order), batch_size, desc):
            rows = order[start:start + batch_size]
            batch = labelled_batch(processor, [images[i] for i in rows], [questions[i] for i in rows],
                                   [responses[i] for i in rows], model.device)
            labels = batch.pop("labels")
            out[rows] = sequence_logps(model(**batch).logits, labels).cpu()
    return out


def answer_probability(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
                       gold: Sequence[Sequence[str]], batch_size: int = 128,
                       desc: str | None = None) -> list[float]:
    """Exact-likelihood confidence: the probability that one temperature-1 sample is a gold
    answer, i.e. the sum over distinct gold strings of p(answer + end of turn)."""
    questions, gold = list(questions), list(gold)  # a `datasets` column re-reads on every access
    flat = [(i, a) for i, answers in enumerate(gold) for a in dict.fromkeys(answers)]
    logps = response_logprobs(model, processor, [images[i] for i, _ in flat],
                              [questions[i] for i, _ in flat], [a for _, a in flat],
                              batch_size, desc)
    probs = [0.0] * len(questions)
    for (i, _), lp in zip(flat, logps.exp().tolist()):
        probs[i] += lp
    return probs
