"""The generic adapter: any Hugging Face `datasets` VQA table with image/question/answers columns.

Point notebook 00's `source_path` at a folder written by `save_to_disk`, a folder of data files
(parquet, arrow, json with an image column), or a hub name in the local cache (downloads are
off here: HF_HUB_OFFLINE=1), e.g. a VQAv2 or VizWiz copy on disk. What is read:
  image     the image (a `datasets.Image` feature, or anything PIL opens)
  question  the question text
  answers   a list of strings, a list of {"answer": ...} records (VQAv2, VizWiz) or one string;
            a response is correct when it matches any of them after normalisation (a lenient
            form of VQA accuracy)
and, when present: `image_id` (questions about the same image are kept in one split; without
it the image's path or bytes identify it), `answer_type` (the question type: "yes/no",
"number", "other") and `answerable` (VizWiz: 0 marks a question the image cannot answer; it
becomes an "annotated" unanswerable row, gold: refuse). Other columns are ignored; rename
yours with `Dataset.rename_column` if they differ.

Splits: "train" feeds base_train, probe and validation; "validation" (else "test") feeds test
and ood; the hidden-answer test splits of VQAv2 and VizWiz are skipped that way. A table with
one split is cut by image, TRAIN_SHARE of its images for training.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from .real_data import VQATable

TRAIN_SHARE = 0.8
TEST_SPLIT_NAMES = ("validation", "test")


def load(path: str) -> datasets.Dataset | datasets.DatasetDict:
    """A local folder (save_to_disk, else data files) or a hub name from the local cache."""
    if Path(path).is_dir():
        try:
            return datasets.load_from_disk(path)
        except FileNotFoundError:  # a folder of data files, not a saved dataset
            return datasets.load_dataset(path)
    if Path(path).exists():
        raise ValueError(f"source_path {path!r} is a file; give the folder that holds the dataset")
    try:
        return datasets.load_dataset(path)
    except Exception as err:
        raise FileNotFoundError(
            f"cannot load the dataset {path!r}: it is neither a local folder nor a hub dataset in "
            f"the local cache (downloads are off: HF_HUB_OFFLINE=1). ({err})") from err


def _answers(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    texts = [v["answer"] if isinstance(v, dict) else v for v in value]
    return list(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip()))


def _qtype(answer_type: str | None, answers: list[str]) -> str:
    if answer_type:
        return answer_type.replace("/", "_").replace(" ", "_")
    if answers and all(a.lower() in ("yes", "no") for a in answers):
        return "yes_no"
    return "number" if answers and all(a.isdigit() for a in answers) else "other"


def _image_keys(ds: datasets.Dataset) -> list[str]:
    """An id per row for its image: the `image_id` column, else the file path or a hash of the
    encoded bytes (read without decoding)."""
    if "image_id" in ds.column_names:
        return [str(i) for i in ds["image_id"]]
    raw = ds.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
    keys = []
    for batch in raw.iter(batch_size=1000):
        for image in batch["image"]:
            keys.append(image.get("path") or hashlib.sha1(image["bytes"]).hexdigest())
    return keys


def table(ds: datasets.Dataset) -> VQATable:
    """One `datasets` split as a VQATable; images are decoded only when a split uses them."""
    missing = {"image", "question", "answers"} - set(ds.column_names)
    if missing:
        raise ValueError(f"the dataset lacks the column(s) {sorted(missing)}; it needs image, "
                         f"question and answers (rename yours with Dataset.rename_column)")
    answers = [_answers(a) for a in ds["answers"]]
    answerable = ds["answerable"] if "answerable" in ds.column_names else [1] * len(ds)
    answers = [a if ok else [] for a, ok in zip(answers, answerable)]
    types = ds["answer_type"] if "answer_type" in ds.column_names else [None] * len(ds)
    keys = _image_keys(ds)
    items = pd.DataFrame({
        "image_id": keys, "question": ds["question"], "answers": answers,
        "qtype": [_qtype(t, a) for t, a in zip(types, answers)],
        "family": ["vqa" if a else "unanswerable" for a in answers],
    })
    empty = items["answers"].map(len).eq(0) & pd.Series(answerable).astype(bool)
    if empty.any():
        raise ValueError(f"{int(empty.sum())} rows have no answer and are not marked unanswerable "
                         f"(an `answerable` column of 0); e.g. row {int(empty.idxmax())}")
    first_row = {key: k for k, key in reversed(list(enumerate(keys)))}
    return VQATable(items, lambda image_id: ds[first_row[image_id]]["image"])


def tables(path: str, seed: int = 0) -> tuple[VQATable, VQATable]:
    """The train and test tables of the dataset at `path` (see the module's doc)."""
    loaded = load(path)
    if isinstance(loaded, datasets.DatasetDict):
        test_name = next((n for n in TEST_SPLIT_NAMES if n in loaded), None)
        if "train" in loaded and test_name is not None:
            return table(loaded["train"]), table(loaded[test_name])
        if len(loaded) != 1:
            raise ValueError(f"the dataset's splits are {list(loaded)}; name one 'train' and one "
                             f"{' or '.join(TEST_SPLIT_NAMES)}, or give a single split")
        loaded = next(iter(loaded.values()))
    whole = table(loaded)
    ids = whole.image_ids()
    order = np.random.default_rng([seed, 19]).permutation(len(ids))
    train_ids = {ids[i] for i in order[:int(TRAIN_SHARE * len(ids))]}
    in_train = whole.items["image_id"].isin(train_ids)
    return (VQATable(whole.items[in_train], whole.load_image),
            VQATable(whole.items[~in_train], whole.load_image))
