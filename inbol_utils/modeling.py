"""The tiny MLLM, built from transformers' own classes, offline.

A word-level tokenizer, a CLIP image processor and a `LlavaProcessor` with a chat template,
and a `LlavaForConditionalGeneration` (CLIP-style vision tower, projector, Llama language
model). Saved with `save_pretrained` and loaded with `AutoModelForImageTextToText` and
`AutoProcessor`, exactly the code path of a hub model, so the rest of the study never needs to
know which kind of model it holds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import (
    AutoModelForImageTextToText,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)
from transformers.models.clip import CLIPImageProcessorPil
from transformers.utils import logging as hf_logging

from .artifacts import atomic_dir
from .image_only import load_processor

# Shard-writing and weight-loading bars add noise to every notebook cell; training bars stay.
hf_logging.disable_progress_bar()

# The tokenizer's roles, then the other special tokens: ids 0-4, in this order.
ROLES = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
IMAGE_TOKEN = "<image>"
NAMED_TOKENS = {"image_token": IMAGE_TOKEN}  # the processor finds its image token by this name
TEMPLATE_WORDS = ("user:", "assistant:")

# A plain-text chat format: "user: <image> what color is ... assistant: red</s>".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}user: "
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %} "
    "{% else %}assistant: {{ message['content'][0]['text'] }}</s> "
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@dataclass(frozen=True)
class ModelSize:
    """Default: about 1M parameters; one 16x16 patch per grid cell (4 image tokens)."""

    image_size: int = 32
    patch_size: int = 16
    vision_width: int = 64
    vision_layers: int = 2
    text_width: int = 128
    text_layers: int = 4
    heads: int = 4


def build_tokenizer(words: Iterable[str], roles: Mapping[str, str] = ROLES,
                    special: Sequence[str] = (IMAGE_TOKEN,),
                    named: Mapping[str, str] = NAMED_TOKENS) -> PreTrainedTokenizerFast:
    """A word-level tokenizer: lowercase, split on whitespace, one id per word.

    Words are enough for a closed world and make every token readable in the book; special
    tokens are matched before splitting, so "red</s>" is two tokens. `roles` (pad, unk, bos,
    eos), the other `special` tokens and the `named` ones a processor looks up (its image
    token) default to our LLaVA's; another architecture passes its own
    (`architectures`). The roles must include an unk token: the word level needs one.
    """
    specials = list(dict.fromkeys([*roles.values(), *special]))
    vocab = {tok: i for i, tok in enumerate(specials)}
    for word in sorted((set(words) | set(TEMPLATE_WORDS)) - set(vocab)):
        vocab[word] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=roles["unk_token"]))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **roles, extra_special_tokens=dict(named))
    tokenizer.add_special_tokens({"additional_special_tokens": list(special)})
    return tokenizer


def build_processor(words: Iterable[str], size: ModelSize = ModelSize()) -> LlavaProcessor:
    # The world renders at exactly the model's resolution, so the processor only rescales and
    # normalises: resizing and cropping would be no-ops that cost as much as the model's pass.
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": size.image_size},
        crop_size={"height": size.image_size, "width": size.image_size},
        do_resize=False, do_center_crop=False,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
    )
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=build_tokenizer(words),
        patch_size=size.patch_size, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )


def build_model(processor: LlavaProcessor, size: ModelSize = ModelSize(),
                seed: int = 0) -> LlavaForConditionalGeneration:
    """A freshly initialised LLaVA sized by `size`. `vision_feature_layer=-1`: a tower trained
    from scratch has no reason to prefer its penultimate layer (LLaVA's choice for CLIP)."""
    tokenizer = processor.tokenizer
    n_patches = (size.image_size // size.patch_size) ** 2
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=size.vision_width, intermediate_size=4 * size.vision_width,
            num_hidden_layers=size.vision_layers, num_attention_heads=size.heads,
            image_size=size.image_size, patch_size=size.patch_size,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=size.text_width,
            intermediate_size=4 * size.text_width, num_hidden_layers=size.text_layers,
            num_attention_heads=size.heads, num_key_value_heads=size.heads,
            max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=n_patches, vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save(model, processor, path: str | Path) -> None:
    """Save model and processor together, atomically, in the hub format."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)


DTYPES = ("float32", "bfloat16", "float16", "auto")


def torch_dtype(dtype: str) -> torch.dtype:
    """A `DTYPES` name as torch's dtype; "auto" (a checkpoint's own) is float32 for a model
    built here."""
    return torch.float32 if dtype == "auto" else getattr(torch, dtype)


def load(path: str | Path, device: str | None = None, dtype: str = "auto"):
    """Load any image-text-to-text model and its processor: ours, or one from the hub cache.

    `dtype` "auto" keeps the dtype the checkpoint was saved in: the study saves every model in
    the dtype its base model was given (notebook 00's `dtype`), so that choice carries through
    the whole run; "float32", "bfloat16" or "float16" casts."""
    path = str(path)
    if Path(path).exists() is False and "/" not in path:
        raise FileNotFoundError(
            f"Model {path!r} not found: give a folder written by `save` (e.g. "
            f"data/default/base_model) or a hub id available offline.")
    try:
        processor = load_processor(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise FileNotFoundError(
            f"Cannot load a model from {path!r}: it is neither a saved model folder nor a hub "
            f"model in the local cache (downloads are off: HF_HUB_OFFLINE=1). ({err})") from err
    model.to(device or default_device()).eval()
    return model, processor


def default_device() -> str:
    """This process's GPU if there is one (its LOCAL_RANK's under accelerate launch or
    torchrun, so that data-parallel processes do not all load onto the first GPU), else the CPU."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


VISION_ENCODERS = ("vision_tower", "vision_model", "visual")
PROJECTORS = ("merger",)  # Qwen2-VL's projector sits inside `visual`; projectors keep training


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def freeze_vision(model) -> int:
    """Freeze the vision encoder, as LLaVA does after pretraining; returns how many tensors.
    Matches the encoder by name so it works for hub architectures too (LLaVA's vision_tower,
    Idefics3's and SmolVLM's vision_model, Qwen2-VL's visual); the projector into the language
    model keeps training, as LLaVA's does (Qwen2-VL's merger, inside `visual`)."""
    frozen = 0
    for name, param in model.named_parameters():
        parts = set(name.split("."))
        if parts & set(VISION_ENCODERS) and not parts & set(PROJECTORS):
            param.requires_grad_(False)
            frozen += 1
    return frozen
