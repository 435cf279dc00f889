"""Processors of video-capable architectures, loaded for images only when torchvision is absent.

Qwen2-VL's and Qwen2.5-VL's processors also hold a video processor, and transformers' video
processors need torchvision, which this study does not install: it uses still images only.
Built directly, such a processor fails; loaded, it raises "Can't load video processor". Its
image-only twin here is the same class without the video processor: the same chat template,
image processor, tokenizer and placeholder expansion, so the same tokens reach the model.

Importing this module registers the twins with `AutoProcessor` (every process that loads a
model imports it through `modeling`): a folder saved from a twin names it as its
`processor_class`, and without the registration `AutoProcessor` would silently return only the
tokenizer. A hub checkpoint names the original class; `load_processor` falls back to the twin
when the original cannot load its video processor. With torchvision installed (a GPU machine),
hub checkpoints load their original processors and nothing here is used.
"""
from __future__ import annotations

from pathlib import Path

from transformers import (AutoConfig, AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLConfig,
                          Qwen2VLProcessor)
from transformers.processing_utils import ProcessorMixin


def _image_only(processor_class: type) -> type:
    """A subclass of `processor_class` whose only parts are an image processor and a tokenizer
    (transformers reads a processor's parts off its __init__ signature)."""
    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        processor_class.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return type(f"ImageOnly{processor_class.__name__}", (processor_class,),
                {"__init__": __init__, "__module__": __name__,
                 "__doc__": f"{processor_class.__name__} for images only (no video processor, no torchvision)."})


ImageOnlyQwen2VLProcessor = _image_only(Qwen2VLProcessor)
ImageOnlyQwen2_5_VLProcessor = _image_only(Qwen2_5_VLProcessor)
TWINS = {Qwen2VLConfig: ImageOnlyQwen2VLProcessor, Qwen2_5_VLConfig: ImageOnlyQwen2_5_VLProcessor}
for _config, _twin in TWINS.items():
    AutoProcessor.register(_config, _twin, exist_ok=True)


def load_processor(path: str | Path) -> ProcessorMixin:
    """`AutoProcessor.from_pretrained(path)`, or the image-only twin where the checkpoint's own
    processor needs a video processor that cannot load; never a bare tokenizer."""
    try:
        processor = AutoProcessor.from_pretrained(path)
    except OSError as err:
        twin = TWINS.get(type(AutoConfig.from_pretrained(path)))
        if twin is None or "video processor" not in str(err):
            raise
        processor = twin.from_pretrained(path)
    if not isinstance(processor, ProcessorMixin):
        raise ValueError(
            f"{path} holds no multimodal processor: AutoProcessor found only a "
            f"{type(processor).__name__}. Save the model's processor beside it "
            f"(processor.save_pretrained), with its image processor and chat template.")
    return processor
