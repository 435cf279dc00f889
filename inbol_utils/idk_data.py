"""From boundary labels to training data: the IDK-IT instruction set and the preference set.

IDK-IT: answer when the query is inside the boundaries, refuse when it lies beyond either.
Preferences, as in Cheng et al. 2024's Idk-DPO, from a model's *own* samples on queries it was
not trained on (on-policy: the IDK-IT model on probe half B), so that DPO pushes against the
mistakes this model actually makes:
  inside  chosen = a correct response (the gold answer if it gave none), rejected = a refusal
          and each distinct wrong response (over-refusal is a failure too);
  beyond  chosen = a refusal, rejected = each distinct response that is not a clean refusal
          (a lucky right answer, a wrong one, an answer-then-refusal hybrid, an empty one).
Each pair keeps the label's confidence and the sampling model's propensity for the rejected
response (the share of its samples that gave that response; for a refusal, the share that refused
in any phrasing); CA-DPO turns the two into a weight or margin.
The same builder on the *base* model's samples gives the off-policy pairs of the ablation.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Mapping

import datasets
import numpy as np
import pandas as pd

from .runner import profiling
from .answers import REFUSAL_RESPONSES, classify_response, normalize_answer
from .artifacts import atomic_dir, require
from .world import REGIONS, TRUTHS, select_ids

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
    "propensity": datasets.Value("float32"),
})
CONFIDENCE_SIGNALS = {"sampled": "sampled_conf", "likelihood": "likelihood_conf"}


def labelling(tau: float, confidence_signal: str, region_mix: Mapping[str, float]) -> dict:
    """The choices that turned probe confidences into labels, checked. They are saved beside
    the data they made (`save`) and read back from there by every later stage, so that a new
    tau in notebook 02 reaches CA-DPO's weights without being passed again."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1], got {tau!r}")
    if confidence_signal not in CONFIDENCE_SIGNALS:
        raise ValueError(f"confidence_signal must be one of {sorted(CONFIDENCE_SIGNALS)}, "
                         f"got {confidence_signal!r}")
    return {"tau": float(tau), "confidence_signal": confidence_signal,
            "region_mix": check_mix(region_mix)}


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
    """The rows `mix` keeps; keeping none of them is an error that names the regions' counts, not
    an empty training set that fails later, deep in `datasets`."""
    mix = check_mix(mix)
    keep = rng.random(len(table)) < table["region"].map(mix).to_numpy()
    if len(table) and not keep.any():
        counts = table["region"].value_counts().to_dict()
        raise ValueError(f"region_mix {mix} keeps none of the {len(table)} labelled queries (by region: {counts}): "
                         "give a region that has queries a share above 0 (notebook 02's region_mix)")
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


def _most_frequent(texts: list[str]) -> str | None:
    return Counter(texts).most_common(1)[0][0] if texts else None


def query_pairs(samples: list[str], answers: list[str], region: str,
                rng: np.random.Generator) -> list[tuple[str, str, float]]:
    """(chosen, rejected, propensity) pairs for one query from the model's samples on it.
    Distinct responses are told apart by their canonical form; the propensity of a rejected
    refusal is the share of samples that refused, of a rejected answer the share that gave it."""
    kinds = [classify_response(s, answers) for s in samples]
    refusals = [s for s, k in zip(samples, kinds) if k == "refusal"]
    refusal = _most_frequent(refusals) or _refusal(rng)
    forms = Counter(normalize_answer(s) for s, k in zip(samples, kinds) if k != "refusal")

    def distinct(wanted: set[str]) -> list[str]:
        seen, out = set(), []
        for sample, kind in zip(samples, kinds):
            form = normalize_answer(sample)
            if kind in wanted and form not in seen:
                seen.add(form)
                out.append(sample)
        return out

    def share(response: str) -> float:
        return forms[normalize_answer(response)] / len(samples)

    if region == "inside":
        correct = [s for s, k in zip(samples, kinds) if k == "correct"]
        chosen = _most_frequent(correct) or answers[0]
        pairs = [(chosen, refusal, len(refusals) / len(samples))]
        return pairs + [(chosen, r, share(r)) for r in distinct({"wrong", "hybrid"})]
    return [(refusal, r, share(r)) for r in distinct({"correct", "wrong", "hybrid"})]


def preference_rows(table: pd.DataFrame, mix: Mapping[str, float] = {}, seed: int = 0) -> pd.DataFrame:
    """Every pair of every kept query. `table` holds the labelled queries (`answers`, `region`,
    `confidence`) and the `samples` of the model whose behaviour the pairs should correct."""
    if table.empty:
        raise ValueError("no labelled queries to build preference pairs from")
    rng = np.random.default_rng(seed + 1)
    kept = _subsample(table, mix, rng)
    rows = []
    # Each query's fields as plain values, once (a pandas row per pair took 4 s for 4,600 pairs).
    for query, samples in zip(kept.drop(columns=["samples"]).to_dict("records"), kept["samples"]):
        if not len(samples):
            raise ValueError(f"query {query['id']!r} has no samples to build pairs from")
        for chosen, rejected, propensity in query_pairs(list(samples), list(query["answers"]),
                                                        query["region"], rng):
            rows.append({**query, "chosen": chosen, "rejected": rejected, "propensity": propensity})
    if not rows:  # every kept query lies beyond the boundary, and every sample refused it
        raise ValueError(f"none of the {len(kept)} kept queries gives a preference pair: each lies beyond the "
                         "boundary and every sample refused it, so there is nothing to prefer. A base model that "
                         "knows nothing labels every query beyond its boundary: train it further (notebook 00)")
    return pd.DataFrame(rows, columns=[*table.columns.drop("samples"), "chosen", "rejected",
                                       "propensity"])


@profiling.part("data building")
def to_dataset(rows: pd.DataFrame, images: datasets.Dataset, features: datasets.Features) -> datasets.Dataset:
    """Attach the images (looked up by id in the probed split) and type the columns."""
    # The images as stored (PNG bytes): decoding and encoding them again took 3 s for 4,600 pairs.
    picked = select_ids(images, rows["id"]).cast_column("image", datasets.Image(decode=False))
    columns = {name: rows[name].tolist() for name in features if name != "image"}
    return datasets.Dataset.from_dict({**columns, "image": picked["image"][:]}, features=features)


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
        for field, allowed in (("region", REGIONS), ("region_truth", TRUTHS)):
            if row[field] not in allowed:
                raise ValueError(f"{where}: field {field!r} must be one of {allowed}, got {row[field]!r}")
        for field in ("confidence", "propensity"):
            if field in row and (row[field] is None or not 0.0 <= row[field] <= 1.0 + 1e-6):
                raise ValueError(f"{where}: field {field!r} must lie in [0, 1], got {row[field]!r}")
        if "chosen" in row and row["chosen"] == row["rejected"]:
            raise ValueError(f"{where}: fields 'chosen' and 'rejected' are equal ({row['chosen']!r})")
    return ds


LABELLING_FILE = "labelling.json"


def save(ds: datasets.Dataset, path: str | Path, labels: Mapping) -> None:
    """Write a training set and the labelling that made it (see `labelling`), atomically."""
    with atomic_dir(path) as tmp:
        ds.save_to_disk(str(tmp))
        (tmp / LABELLING_FILE).write_text(json.dumps(labels, indent=2, sort_keys=True))


def load(path: str | Path, features: datasets.Features, what: str,
         produced_by: str = "notebook 02 (data generation)") -> datasets.Dataset:
    ds = datasets.load_from_disk(str(require(path, produced_by)))
    return validate(ds, features, what)


def load_labelling(path: str | Path) -> dict:
    """The labelling saved beside a training set (tau, confidence_signal, region_mix)."""
    file = require(Path(path) / LABELLING_FILE, "notebook 02 (data generation)")
    return json.loads(file.read_text())
