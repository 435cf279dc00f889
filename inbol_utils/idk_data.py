"""From boundary labels to training data: the IDK-IT instruction set and the CA-DPO preference set.

IDK-IT: answer when the query is inside the boundaries, refuse when it lies beyond either.
Preferences: pairs built from the model's *own* samples where possible, so that DPO pushes
against the mistakes this model actually makes:
  inside  chosen = the correct answer,  rejected = its favourite wrong answer, or a refusal
          when it never answered wrongly (teaching it not to over-refuse);
  beyond  chosen = a refusal,           rejected = its favourite wrong answer (or its greedy
          answer when every sample was right by luck, or its empty answer when it said nothing).
Each pair carries its confidence, which CA-DPO turns into a weight or a margin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import datasets
import numpy as np
import pandas as pd

from .answers import REFUSAL_RESPONSES, classify_response, is_refusal
from .artifacts import atomic_dir, require
from .confidence import most_frequent_wrong
from .world import REGIONS, select_ids

IDK_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "image": datasets.Image(), "question": datasets.Value("string"),
    "response": datasets.Value("string"), "region": datasets.Value("string"),
    "region_truth": datasets.Value("string"), "family": datasets.Value("string"),
    "confidence": datasets.Value("float32"),
})
PREFERENCE_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "image": datasets.Image(), "question": datasets.Value("string"),
    "chosen": datasets.Value("string"), "rejected": datasets.Value("string"),
    "region": datasets.Value("string"), "region_truth": datasets.Value("string"),
    "family": datasets.Value("string"), "confidence": datasets.Value("float32"),
})


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """`mix[region]` is the share of that region's rows kept (0 drops the region entirely)."""
    unknown = set(mix) - set(REGIONS)
    if unknown:
        raise ValueError(f"region_mix has unknown regions {sorted(unknown)}; use {REGIONS}")
    bad = {k: v for k, v in mix.items() if not 0 <= v <= 1}
    if bad:
        raise ValueError(f"region_mix shares must lie in [0, 1], got {bad}")
    return {region: float(mix.get(region, 1.0)) for region in REGIONS}


def _subsample(table: pd.DataFrame, mix: Mapping[str, float], rng: np.random.Generator) -> pd.DataFrame:
    mix = check_mix(mix)
    keep = rng.random(len(table)) < table["region"].map(mix).to_numpy()
    return table[keep]


def _refusal(rng: np.random.Generator) -> str:
    return REFUSAL_RESPONSES[int(rng.integers(len(REFUSAL_RESPONSES)))]


def idk_instruction_rows(table: pd.DataFrame, mix: Mapping[str, float] = {},
                         seed: int = 0) -> pd.DataFrame:
    """One instruction row per kept query: its gold answer if inside, a refusal if beyond.
    `table` is the boundary table (ground-truth columns, `region`, `confidence`)."""
    rng = np.random.default_rng(seed)
    kept = _subsample(table, mix, rng).copy()
    kept["response"] = [a[0] if r == "inside" else _refusal(rng)
                        for a, r in zip(kept["answers"], kept["region"])]
    return kept


def preference_rows(table: pd.DataFrame, mix: Mapping[str, float] = {}, seed: int = 0) -> pd.DataFrame:
    """One (chosen, rejected) pair per kept query, from the model's own samples."""
    rng = np.random.default_rng(seed + 1)
    kept = _subsample(table, mix, rng).copy()
    chosen, rejected = [], []
    for answers, region, samples, greedy in zip(kept["answers"], kept["region"], kept["samples"],
                                                 kept["greedy"]):
        wrong = most_frequent_wrong(samples, answers)
        if region == "inside":
            correct = [s for s in samples if classify_response(s, answers) == "correct"]
            chosen.append(correct[0] if correct else answers[0])
            rejected.append(wrong if wrong is not None else _refusal(rng))
        else:
            chosen.append(_refusal(rng))
            rejected.append(wrong if wrong is not None else _fallback_rejected(greedy, samples))
    kept["chosen"], kept["rejected"] = chosen, rejected
    return kept[kept["rejected"].notna() & (kept["chosen"] != kept["rejected"])]


def _fallback_rejected(greedy: str, samples: list[str]) -> str | None:
    """What to reject beyond the boundary when no sample was a non-empty wrong answer: the
    greedy answer or a sample (right by luck), else an empty answer (the model said nothing,
    which the evaluation scores as wrong), else nothing: a model that only refused leaves no
    pair to learn from."""
    answers = [s for s in (greedy, *samples) if not is_refusal(s)]
    return next((s for s in answers if s.strip()), answers[0] if answers else None)


def to_dataset(rows: pd.DataFrame, images: datasets.Dataset, features: datasets.Features) -> datasets.Dataset:
    """Attach the images (looked up by id in the probed split) and type the columns."""
    picked = select_ids(images, rows["id"])
    columns = {name: rows[name].tolist() for name in features if name != "image"}
    return datasets.Dataset.from_dict({**columns, "image": list(picked["image"])}, features=features)


def validate(ds: datasets.Dataset, features: datasets.Features, what: str) -> datasets.Dataset:
    """Check a training set against its schema; a bad row stops with its id and field."""
    missing = set(features) - set(ds.column_names)
    if missing:
        raise ValueError(f"{what}: missing columns {sorted(missing)}; expected {list(features)}")
    for k, row in enumerate(ds.remove_columns("image")):
        where = f"{what}: row {k} (id {row.get('id')!r})"
        for field in ("question", "response", "chosen"):
            if field in row and (not isinstance(row[field], str) or not row[field].strip()):
                raise ValueError(f"{where}: field {field!r} must be a non-empty string, got {row[field]!r}")
        if "rejected" in row and not isinstance(row["rejected"], str):  # may be the model's empty answer
            raise ValueError(f"{where}: field 'rejected' must be a string, got {row['rejected']!r}")
        for field in ("region", "region_truth"):
            if row[field] not in REGIONS:
                raise ValueError(f"{where}: field {field!r} must be one of {REGIONS}, got {row[field]!r}")
        if row["confidence"] is None or not 0.0 <= row["confidence"] <= 1.0 + 1e-6:
            raise ValueError(f"{where}: field 'confidence' must lie in [0, 1], got {row['confidence']!r}")
        if "chosen" in row and row["chosen"] == row["rejected"]:
            raise ValueError(f"{where}: fields 'chosen' and 'rejected' are equal ({row['chosen']!r})")
    return ds


def save(ds: datasets.Dataset, path: str | Path) -> None:
    with atomic_dir(path) as tmp:
        ds.save_to_disk(str(tmp))


def load(path: str | Path, features: datasets.Features, what: str) -> datasets.Dataset:
    ds = datasets.load_from_disk(str(require(path, "notebook 02 (data generation)")))
    return validate(ds, features, what)
