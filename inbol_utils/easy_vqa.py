"""The easy-VQA adapter: the dataset the PyPI package `easy-vqa` ships, as two `VQATable`s.

easy-VQA (Victor Zhou, MIT licence) has 4,000 train and 1,000 test 64x64 images, each one
shape (circle, rectangle or triangle) in one of eight colours on a light background, and
template questions about it with 13 answers: the shape, the colour, or yes/no. It is read
through the package's own accessors (`get_train_questions`, `get_train_image_paths`, ...).

What each image contains is not stored; it is derived from the image's own questions
(`image_attributes`): an answer to "what shape is ..." names its shape, to "what color is ..."
its colour; "what is the blue shape?" says the shape is blue, "what color is the circle?" that
it is a circle; and a yes/no question about a colour or shape says whether the image has it
("is there not a red shape?" - "no" means it has). Absent values are excluded the same way; when
all but one shape are excluded, that one is the image's. An image whose questions contradict
each other stops the build. From that, the two constructions the annotations allow:
  absent   "what is the teal shape?" on an image whose shape is not teal, "what color is the
           triangle?" on one without a triangle: easy-VQA's own templates, with an attribute
           the image provably lacks;
  swapped  another image's question with such a premise ("the teal shape", "the triangle"),
           on an image that provably lacks it.
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image

from .real_data import VQATable

SHAPES = ("circle", "rectangle", "triangle")
COLOURS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
ABSENT_TEMPLATES = {  # easy-VQA's own phrasings of a question with a premise
    "colour": ("what is the {} shape?",),
    "shape": ("what color is the {}?", "what is the color of the {}?"),
}
UNKNOWN = "?"


def _words(question: str) -> list[str]:
    return question.rstrip("?").split()


def premise(question: str) -> tuple[str, str] | None:
    """("colour", value) or ("shape", value) if an open question names one ("what is the teal
    shape?", "what color is the circle?"); None for "what color is the shape?"."""
    words = _words(question)
    named = [("colour", w) for w in words if w in COLOURS] + [("shape", w) for w in words if w in SHAPES]
    return named[0] if named else None


def qtype(answer: str) -> str:
    return "shape" if answer in SHAPES else "color" if answer in COLOURS else "yes_no"


def image_attributes(questions: list[tuple[str, str]]) -> dict[str, str]:
    """{"colour": ..., "shape": ...} of one image from its (question, answer) pairs (UNKNOWN
    where they do not say). See the module's doc for the rules."""
    has: dict[str, set[str]] = defaultdict(set)
    lacks: dict[str, set[str]] = defaultdict(set)
    for question, answer in questions:
        named = premise(question)
        if answer in ("yes", "no"):
            if named is None:
                raise ValueError(f"easy-VQA yes/no question names no colour or shape: {question!r}")
            negated = "not" in _words(question) or question.startswith("is no ")
            (has if (answer == "yes") != negated else lacks)[named[0]].add(named[1])
            continue
        has["shape" if answer in SHAPES else "colour"].add(answer)
        if named is not None:
            has[named[0]].add(named[1])
    attributes = {}
    for kind, values in (("colour", COLOURS), ("shape", SHAPES)):
        if len(has[kind]) > 1 or has[kind] & lacks[kind]:
            raise ValueError(f"easy-VQA questions contradict each other about the {kind}: {questions}")
        left = [v for v in values if v not in lacks[kind]]
        attributes[kind] = next(iter(has[kind])) if has[kind] else left[0] if len(left) == 1 else UNKNOWN
    return attributes


class EasyVQATable(VQATable):
    """One split of easy-VQA, with what each image contains (`attributes`)."""

    constructions = ("absent", "blank", "noise", "swapped")

    def __init__(self, questions: tuple[list, list, list], image_paths: dict[int, str]):
        texts, answers, image_ids = questions
        items = pd.DataFrame({"image_id": [str(i) for i in image_ids], "question": texts,
                              "answers": [[a] for a in answers], "qtype": [qtype(a) for a in answers],
                              "family": "perception"})
        by_image = defaultdict(list)
        for image_id, text, answer in zip(items["image_id"], texts, answers):
            by_image[image_id].append((text, answer))
        self.attributes = {i: image_attributes(qs) for i, qs in by_image.items()}
        items["entity"] = items["image_id"].map(lambda i: "{colour} {shape}".format(**self.attributes[i]))
        paths = {str(k): v for k, v in image_paths.items()}
        super().__init__(items, lambda image_id: _load(paths[image_id]))

    def absent_question(self, rng: np.random.Generator, image_id: str) -> tuple[str, str, str] | None:
        """A colour or shape this image provably lacks, asked with one of easy-VQA's templates."""
        known = [k for k in ("colour", "shape") if self.attributes[image_id][k] != UNKNOWN]
        if not known:
            return None
        kind = known[int(rng.integers(len(known)))]
        values = [v for v in (COLOURS if kind == "colour" else SHAPES) if v != self.attributes[image_id][kind]]
        value = values[int(rng.integers(len(values)))]
        templates = ABSENT_TEMPLATES[kind]
        question = templates[int(rng.integers(len(templates)))].format(value)
        return question, "shape" if kind == "colour" else "color", value

    def premise_missing(self, question: pd.Series, image_id: str) -> bool:
        """The question names a colour or shape, and this image's is known and different."""
        named = premise(question["question"])
        if named is None:
            return False
        own = self.attributes[image_id][named[0]]
        return own != UNKNOWN and own != named[1]


@lru_cache(maxsize=None)
def _load(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def tables() -> tuple[EasyVQATable, EasyVQATable]:
    """easy-VQA's train and test tables, from the installed package."""
    try:
        import easy_vqa
    except ImportError as err:
        raise ImportError("the easy_vqa source needs the package easy-vqa "
                          "(pip install easy-vqa==1.0, pinned in requirements.txt)") from err
    return (EasyVQATable(easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths()),
            EasyVQATable(easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths()))


def vision_labels(entities: list[str]) -> dict[str, list[int]]:
    """Per-image class indices for pretraining the vision tower (-100: not known, ignored),
    from the `entity` column ("blue rectangle") of the base-train split."""
    colours, shapes = [], []
    for entity in entities:
        colour, shape = entity.split(" ")
        colours.append(COLOURS.index(colour) if colour in COLOURS else -100)
        shapes.append(SHAPES.index(shape) if shape in SHAPES else -100)
    return {"colour": colours, "shape": shapes}
