"""Tiny randomly initialised models of hub architectures, built offline: the study's stand-ins
for real checkpoints, which cannot be downloaded here.

Each is built from transformers' own classes as a hub checkpoint is: the architecture's config,
model, image processor (the `*Pil` class: no torchvision) and processor with the chat template
its instruction-tuned checkpoints ship, and a word-level tokenizer (`modeling.build_tokenizer`)
holding the architecture's special tokens. Saved with `modeling.save`, they load back through
`AutoModelForImageTextToText` and `AutoProcessor` like any checkpoint, so the study's code runs
through them exactly as it would through the real one; only the sizes and the vocabulary are
small. Every architecture sees the world's 32x32 image as 4 image tokens, one per grid cell, as
the study's LLaVA does:
  llava     our LLaVA (`modeling`): CLIP tower, patch 16
  qwen2_vl  Qwen2-VL: patch 8, 2x2 patches merged per token, chat template of Qwen2-VL-Instruct
            (ChatML: "<|im_start|>assistant\\n" ... "<|im_end|>"); like the base Qwen tokenizers,
            end-of-sequence is "<|endoftext|>", not the end-of-turn marker
  idefics3  Idefics3, the architecture of SmolVLM-256M/500M-Instruct: patch 8, pixel shuffle by
            2, no image splitting, SmolVLM-Instruct's chat template ("Assistant:" ...
            "<end_of_utterance>")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch
from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor, LlamaConfig,
                          Qwen2VLConfig, Qwen2VLForConditionalGeneration)
from transformers.models.idefics3 import Idefics3ImageProcessorPil
from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

from . import chat, modeling
from .image_only import ImageOnlyQwen2VLProcessor

QWEN2_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


@dataclass(frozen=True)
class Vocabulary:
    """An architecture's tokenizer: its roles, other special tokens, the tokens its processor
    finds by name, and the words its chat template writes (the world's words come on top)."""

    roles: dict
    special: tuple[str, ...]
    named: dict = field(default_factory=dict)
    template_words: tuple[str, ...] = ()

    def tokenizer(self, words: Iterable[str]):
        return modeling.build_tokenizer(set(words) | set(self.template_words), self.roles, self.special, self.named)


QWEN2_VL = Vocabulary(
    roles={"pad_token": "<|endoftext|>", "unk_token": "<unk>", "eos_token": "<|endoftext|>"},
    special=("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"),
    named={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    template_words=("system", "you", "are", "a", "helpful", "assistant.", "user", "assistant"),
)
IDEFICS3 = Vocabulary(
    roles={"pad_token": "<|im_end|>", "unk_token": "<unk>", "bos_token": "<|im_start|>",
           "eos_token": "<end_of_utterance>"},
    special=("<fake_token_around_image>", "<image>", "<global-img>"),
    template_words=("user:", "assistant:"),
)
ARCHITECTURES = ("llava", "qwen2_vl", "idefics3")


def build(architecture: str, words: Iterable[str], size: modeling.ModelSize = modeling.ModelSize(),
          seed: int = 0):
    """A freshly initialised (model, processor) of `architecture` (one of ARCHITECTURES) sized
    by `size`, its vocabulary the template's words and `words`."""
    builders = {"llava": _llava, "qwen2_vl": _qwen2_vl, "idefics3": _idefics3}
    processor = build_processor(architecture, words, size)
    model = builders[architecture](processor, size, seed)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = chat.stop_token_ids(processor)
    return model.eval(), processor


def build_processor(architecture: str, words: Iterable[str], size: modeling.ModelSize = modeling.ModelSize()):
    """The processor of `build`'s model alone (its chat template, tokenizer and image
    processor): enough to count the tokens a row takes in this architecture, with no model."""
    builders = {"llava": modeling.build_processor, "qwen2_vl": _qwen2_vl_processor,
                "idefics3": _idefics3_processor}
    if architecture not in builders:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
    return builders[architecture](set(words), size)


def _llava(processor, size: modeling.ModelSize, seed: int):
    return modeling.build_model(processor, size, seed)


def _qwen2_vl_processor(words: set[str], size: modeling.ModelSize) -> ImageOnlyQwen2VLProcessor:
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=size.patch_size // 2, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": size.image_size ** 2, "longest_edge": size.image_size ** 2},
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    return ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=QWEN2_VL.tokenizer(words),
                                     chat_template=QWEN2_VL_TEMPLATE)


def _qwen2_vl(processor: ImageOnlyQwen2VLProcessor, size: modeling.ModelSize, seed: int):
    tokenizer = processor.tokenizer
    half = size.text_width // size.heads // 2  # mrope splits each head's rotary half in three
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=size.text_width, intermediate_size=4 * size.text_width,
            num_hidden_layers=size.text_layers, num_attention_heads=size.heads, num_key_value_heads=size.heads,
            max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
            eos_token_id=tokenizer.eos_token_id,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                             "mrope_section": [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]}),
        vision_config=dict(depth=size.vision_layers, embed_dim=size.vision_width, hidden_size=size.text_width,
                           num_heads=size.heads, patch_size=size.patch_size // 2, spatial_merge_size=2,
                           temporal_patch_size=2),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"))
    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(config)


def _idefics3_processor(words: set[str], size: modeling.ModelSize) -> Idefics3Processor:
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": size.image_size}, max_image_size={"longest_edge": size.image_size},
        do_image_splitting=False, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    return Idefics3Processor(image_processor=image_processor, tokenizer=IDEFICS3.tokenizer(words),
                             image_seq_len=(size.image_size // (size.patch_size // 2)) ** 2 // 4,
                             chat_template=SMOLVLM_TEMPLATE)


def _idefics3(processor: Idefics3Processor, size: modeling.ModelSize, seed: int):
    tokenizer = processor.tokenizer
    patch = size.patch_size // 2
    config = Idefics3Config(  # vocab_size after the processor: Idefics3Processor adds tokens it lacks
        text_config=LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=size.text_width, intermediate_size=4 * size.text_width,
            num_hidden_layers=size.text_layers, num_attention_heads=size.heads, num_key_value_heads=size.heads,
            max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        vision_config=dict(hidden_size=size.vision_width, intermediate_size=4 * size.vision_width,
                           num_hidden_layers=size.vision_layers, num_attention_heads=size.heads,
                           image_size=size.image_size, patch_size=patch),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2)
    torch.manual_seed(seed)
    return Idefics3ForConditionalGeneration(config)


def main(argv: list[str] | None = None) -> None:
    """Build a tiny model of an architecture with the world's vocabulary and save it in the hub
    format, to run the pipeline through it (notebook 00's `base_model`)."""
    import argparse

    from . import answers, world

    parser = argparse.ArgumentParser(prog="python -m inbol_utils.architectures", description=main.__doc__)
    parser.add_argument("architecture", choices=ARCHITECTURES)
    parser.add_argument("out", help="folder to save the model and its processor in")
    parser.add_argument("--width", type=int, default=32, help="vision and text width")
    parser.add_argument("--layers", type=int, default=1, help="vision and text layers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = modeling.ModelSize(vision_width=args.width, vision_layers=args.layers, text_width=args.width,
                              text_layers=args.layers)
    model, processor = build(args.architecture, world.world_words() | answers.refusal_words(), size, args.seed)
    modeling.save(model, processor, args.out)
    print(f"saved a {type(model).__name__} of {modeling.count_parameters(model):,} parameters to {args.out}")


if __name__ == "__main__":
    main()
