"""Run a model over a split and score every response: the frame every chapter's numbers come from."""
from __future__ import annotations

import datasets
import pandas as pd

from .answers import classify_response
from .generation import greedy_answers
from .metrics import summarize


def split_frame(ds: datasets.Dataset) -> pd.DataFrame:
    """The split's columns without the images, plus `answerable`."""
    df = ds.remove_columns("image").to_pandas()
    df["answers"] = df["answers"].map(list)
    df["answerable"] = df["answers"].map(len) > 0
    return df


def score(df: pd.DataFrame, responses: list[str]) -> pd.DataFrame:
    """Attach responses and their type (correct / refusal / wrong) to a split frame."""
    df = df.copy()
    df["response"] = responses
    df["response_type"] = [classify_response(r, a) for r, a in zip(responses, df["answers"])]
    return df


def predict(model, processor, ds: datasets.Dataset, batch_size: int = 128,
            desc: str | None = "answering") -> pd.DataFrame:
    """Greedy answers for a whole split, scored."""
    responses = greedy_answers(model, processor, list(ds["image"]), ds["question"],
                               batch_size=batch_size, desc=desc)
    return score(split_frame(ds), responses)


def accuracy_by(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Share of correct responses (and row count) per group."""
    return (df.assign(correct=df["response_type"] == "correct")
              .groupby(list(columns))["correct"].agg(accuracy="mean", n="size").reset_index())


def scorer(processor, ds: datasets.Dataset, batch_size: int = 150):
    """A function model -> its scored greedy answers on `ds` (the split read once, here)."""
    images, frame = list(ds["image"]), split_frame(ds)
    questions = frame["question"].tolist()

    def scored(model) -> pd.DataFrame:
        return score(frame, greedy_answers(model, processor, images, questions, batch_size=batch_size))

    return scored


def accuracy_probe(processor, ds: datasets.Dataset):
    """A function model -> greedy accuracy per question type on `ds` (for training callbacks)."""
    scored = scorer(processor, ds)

    def probe(model) -> dict[str, float]:
        frame = scored(model)
        return (frame["response_type"] == "correct").groupby(frame["qtype"]).mean().to_dict()

    return probe


VALIDATION_METRICS = ("trust", "acc", "refr", "answerable_acc", "over_refusal", "unanswerable_refr",
                      "beyond_intrinsic_refr")


def validation_probe(processor, ds: datasets.Dataset):
    """A function model -> headline metrics of its greedy answers on `ds` (the validation
    split), for selecting hyperparameters and checkpoints."""
    scored = scorer(processor, ds)

    def probe(model) -> dict[str, float]:
        result = summarize(scored(model), c_values=())
        return {k: result[k] for k in VALIDATION_METRICS}

    return probe
