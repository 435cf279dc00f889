"""A real VQA table in the pipeline's row schema: image-disjoint splits, extrinsic constructions.

A real table gives (image, question, answers) rows and nothing else the generated world
records. Each becomes a `world.FEATURES` row:
  answerable rows   its question and answers, `region_truth` "unknown": whether the model
                    *could* know the answer (the intrinsic boundary) has no ground truth on a
                    real benchmark; only what the model does can be measured
  constructions     unanswerable by construction (`region_truth` "beyond-extrinsic", gold:
                    refuse), made so that they hold on any image:
                      blank    a one-colour image (the mean colour of a pool image): nothing shown
                      noise    uniform random pixels
                      swapped  another image's question whose premise this image lacks
                      absent   a question about an attribute the image does not have, where the
                               source's annotations say what the image contains (easy-VQA)
                    Only *open* questions are used for them: "is there a dog?" or "how many
                    dogs?" have an answer (no, 0) on a blank image, "what colour is the dog?"
                    has none.
  annotated         rows the dataset itself marks unanswerable (VizWiz's `answerable` = 0)

Splits are image-disjoint: the train table's images are shuffled and cut into validation
(VALIDATION_SHARE), probe (PROBE_SHARE) and base_train (the rest); the test table's images into
test and ood halves. The ood half is shown with a visual shift (`shift_image`: rotated a
quarter turn, with pixel noise), the same questions: what changes is the input, not its
vocabulary, which a word-level tokenizer trained on the train split could not read.
Images are stored at the model's resolution, as the generated world renders at it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import datasets
import numpy as np
import pandas as pd
from PIL import Image

from .runner import profiling
from .world import FEATURES, REGION_UNKNOWN, REGIONS, Asked

CONSTRUCTIONS = ("absent", "blank", "noise", "swapped")
VALIDATION_SHARE = 0.1  # of the train table's images
PROBE_SHARE = 0.3
YES_NO = frozenset({"yes", "no"})


@dataclass(frozen=True)
class RealConfig:
    """The sizes and shares of the splits built from a real table; same config, same splits."""

    seed: int = 0
    n_base_train: int = 24000  # cap on base-training questions (all of its images' otherwise)
    n_probe: int = 3000
    n_validation: int = 1000
    n_test: int = 2000
    n_ood: int = 1000
    unanswerable_share: float = 0.3  # constructed rows in probe, validation, test and ood
    heldout_constructions: tuple[str, ...] = ("noise",)  # never in the probe split
    image_size: int = 32

    def __post_init__(self) -> None:
        for name in ("n_base_train", "n_probe", "n_test", "n_ood", "n_validation", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.unanswerable_share < 1:
            raise ValueError(f"unanswerable_share must lie in [0, 1), got {self.unanswerable_share}")
        unknown = set(self.heldout_constructions) - set(CONSTRUCTIONS)
        if unknown:
            raise ValueError(f"unknown heldout_constructions {sorted(unknown)}; choose from {CONSTRUCTIONS}")


def is_open(answers: list[str]) -> bool:
    """An open question: its answers are neither yes/no nor numbers. Only these lose their
    answer when the image shows nothing ("is there a dog?" on a blank image: "no")."""
    return bool(answers) and not any(a.strip().lower() in YES_NO or a.strip().isdigit() for a in answers)


class VQATable:
    """One table of real questions, grouped by image.

    `items`: one row per question with `image_id`, `question`, `answers` (list of str, empty
    when the dataset marks the question unanswerable), `qtype`, `family` and optionally
    `entity` (what the image shows, where the source knows). `load_image`
    decodes one image by id, so a large table is only read for the images a split uses.
    Subclasses that know what an image contains override `absent_question` and
    `premise_missing` (see easy_vqa)."""

    constructions: tuple[str, ...] = ("blank", "noise", "swapped")

    def __init__(self, items: pd.DataFrame, load_image: Callable[[str], Image.Image]):
        missing = {"image_id", "question", "answers", "qtype", "family"} - set(items.columns)
        if missing:
            raise ValueError(f"a VQA table needs the columns {sorted(missing)}")
        self.items = items.reset_index(drop=True)
        if "entity" not in self.items:
            self.items["entity"] = ""
        self.load_image = load_image

    def image_ids(self) -> list[str]:
        return list(dict.fromkeys(self.items["image_id"]))

    def absent_question(self, rng: np.random.Generator, image_id: str) -> tuple[str, str, str] | None:
        """(question, qtype, entity asked about) for an attribute this image lacks; None when
        the annotations do not say."""
        return None

    def premise_missing(self, question: pd.Series, image_id: str) -> bool:
        """Does `question` (asked of another image) lose its answer on this image? Without
        annotations: assumed for every open question, since a real dataset's questions are
        written about their own image; a question such as "what colour is the sky?" can
        survive a swap, so on such a source the swapped rows are an approximation."""
        return question["image_id"] != image_id and is_open(list(question["answers"]))


def resize(image: Image.Image, size: int) -> Image.Image:
    """RGB at size x size; area averaging when shrinking, like the world's supersampling."""
    image = image.convert("RGB")
    return image if image.size == (size, size) else image.resize((size, size), Image.BOX)


def shift_image(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The out-of-domain visual shift: a quarter turn and Gaussian pixel noise (sd 16). Colours
    and shapes keep their names, so every answer stays right."""
    pixels = np.asarray(image.transpose(Image.Transpose.ROTATE_90), dtype=np.float32)
    pixels = pixels + rng.normal(0, 16, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def blank_image(like: Image.Image) -> Image.Image:
    colour = tuple(int(c) for c in np.asarray(like, dtype=np.float32).reshape(-1, 3).mean(0))
    return Image.new("RGB", like.size, colour)


def noise_image(rng: np.random.Generator, size: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def partition(table: VQATable, shares: dict[str, float], rng: np.random.Generator) -> dict[str, list[str]]:
    """Shuffle the table's images and cut them into consecutive pools by share; the last pool
    takes the rest."""
    ids = table.image_ids()
    order = [ids[i] for i in rng.permutation(len(ids))]
    pools, start = {}, 0
    for k, (name, share) in enumerate(shares.items()):
        stop = len(order) if k == len(shares) - 1 else start + math.floor(share * len(order))
        pools[name] = order[start:stop]
        start = stop
    return pools


@dataclass
class _Row(Asked):
    """A row before its image is loaded: a dataset image's id, or an image made for it."""
    image_id: str | None = field(kw_only=True)
    image: Image.Image | None = field(default=None, kw_only=True)


def construct(table: VQATable, kind: str, pool: list[str], open_items: pd.DataFrame,
              rng: np.random.Generator, size: int) -> _Row:
    """One unanswerable row of construction `kind` on an image of `pool`; `open_items` are the
    pool's open questions."""
    image_id = pool[int(rng.integers(len(pool)))]
    if kind in ("blank", "noise"):
        asked = open_items.iloc[int(rng.integers(len(open_items)))]
        image = (blank_image(resize(table.load_image(image_id), size)) if kind == "blank"
                 else noise_image(rng, size))
        return _Row(asked["question"], [], "unanswerable", asked["qtype"], kind, image_id=None, image=image)
    if kind == "absent":
        for _ in range(100):
            made = table.absent_question(rng, image_id)
            if made is not None:
                question, qtype, entity = made
                return _Row(question, [], "unanswerable", qtype, kind, entity, image_id=image_id)
            image_id = pool[int(rng.integers(len(pool)))]
        raise ValueError("no image of this pool has annotations that say what it lacks")
    if kind == "swapped":
        for _ in range(1000):
            asked = open_items.iloc[int(rng.integers(len(open_items)))]
            if table.premise_missing(asked, image_id):
                return _Row(asked["question"], [], "unanswerable", asked["qtype"], kind, image_id=image_id)
            image_id = pool[int(rng.integers(len(pool)))]
        raise ValueError("found no question whose premise a swapped image lacks")
    raise ValueError(f"unknown construction {kind!r}; known: {CONSTRUCTIONS}")


def split_rows(table: VQATable, pool: list[str], n: int, constructions: tuple[str, ...],
               unanswerable_share: float, rng: np.random.Generator, size: int) -> list[_Row]:
    """n rows on the images of `pool`: the constructions in turn for the unanswerable share,
    the rest the pool's own questions drawn without replacement, in random order. Without
    constructions (base training) the dataset's own unanswerable rows are left out too."""
    items = table.items[table.items["image_id"].isin(set(pool))]
    n_unans = round(n * unanswerable_share) if constructions else 0
    answerable = items if constructions else items[items["family"] != "unanswerable"]
    if len(answerable) < n - n_unans:
        raise ValueError(f"asked for {n - n_unans} questions, but this split's {len(pool)} "
                         f"images have only {len(answerable)}: lower the split's size")
    open_items = items[items["answers"].map(lambda a: is_open(list(a)))]
    if n_unans and open_items.empty:
        raise ValueError("this split's images have no open question to construct unanswerable rows from")
    rows = [construct(table, constructions[i % len(constructions)], pool, open_items, rng, size)
            for i in range(n_unans)]
    picked = answerable.iloc[rng.choice(len(answerable), size=n - n_unans, replace=False)]
    rows += [_Row(r.question, list(r.answers), r.family, r.qtype, "annotated" if r.family == "unanswerable" else "none",
                  r.entity, image_id=r.image_id) for r in picked.itertuples()]
    return [rows[i] for i in rng.permutation(len(rows))]


def to_split(table: VQATable, rows: list[_Row], split: str, heldout: tuple[str, ...], size: int,
             shift: bool, rng: np.random.Generator) -> datasets.Dataset:
    """The rows as a `world.FEATURES` dataset; images decoded, resized (and shifted for ood)."""
    columns: dict[str, list] = {name: [] for name in FEATURES}
    for i, row in enumerate(rows):
        image = row.image if row.image is not None else resize(table.load_image(row.image_id), size)
        if shift:
            image = shift_image(image, rng)
        region = REGIONS[2] if row.family == "unanswerable" else REGION_UNKNOWN
        for key, value in (
            ("id", f"{split}-{i:06d}"), ("image", image), ("question", row.question),
            ("answers", row.answers), ("family", row.family), ("qtype", row.qtype),
            ("construction", row.construction), ("region_truth", region), ("exposure", -1),
            ("entity", row.entity), ("difficulty", float("nan")),
            ("heldout", row.construction in heldout),
        ):
            columns[key].append(value)
    return datasets.Dataset.from_dict(columns, features=FEATURES)


@profiling.part("data building")
def build_splits(train: VQATable, test: VQATable, config: RealConfig) -> dict[str, datasets.Dataset]:
    """The pipeline's five splits from a real train and test table (see the module's doc)."""
    rng = np.random.default_rng([config.seed, 20])
    pools = partition(train, {"validation": VALIDATION_SHARE, "probe": PROBE_SHARE, "base_train": 1.0}, rng)
    pools |= partition(test, {"test": 0.5, "ood": 0.5}, rng)
    made = [c for c in train.constructions if c in CONSTRUCTIONS]
    probe_made = tuple(c for c in made if c not in config.heldout_constructions)
    base_items = train.items[train.items["image_id"].isin(set(pools["base_train"]))
                             & (train.items["family"] != "unanswerable")]
    size = config.image_size
    plans = {  # split -> (table, rows)
        "base_train": (train, split_rows(train, pools["base_train"], min(config.n_base_train, len(base_items)),
                                         (), 0.0, np.random.default_rng([config.seed, 21]), size)),
        "probe": (train, split_rows(train, pools["probe"], config.n_probe, probe_made,
                                    config.unanswerable_share, np.random.default_rng([config.seed, 22]), size)),
        "test": (test, split_rows(test, pools["test"], config.n_test, tuple(made),
                                  config.unanswerable_share, np.random.default_rng([config.seed, 23]), size)),
        "ood": (test, split_rows(test, pools["ood"], config.n_ood, tuple(made),
                                 config.unanswerable_share, np.random.default_rng([config.seed, 24]), size)),
        "validation": (train, split_rows(train, pools["validation"], config.n_validation, tuple(made),
                                         config.unanswerable_share, np.random.default_rng([config.seed, 25]), size)),
    }
    return {name: to_split(table, rows, name, config.heldout_constructions, config.image_size,
                           shift=name == "ood", rng=np.random.default_rng([config.seed, 30 + i]))
            for i, (name, (table, rows)) in enumerate(plans.items())}


def split_words(splits: dict[str, datasets.Dataset]) -> set[str]:
    """Every word of every question and answer of the splits (for the word-level tokenizer)."""
    words = set()
    for ds in splits.values():
        for text in ds["question"]:
            words.update(text.lower().split())
        for answers in ds["answers"]:
            for answer in answers:
                words.update(answer.lower().split())
    return words
