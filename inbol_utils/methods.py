"""The study's methods, in one registry: what each is called, how it is trained, where its
model lives and the key that names it in glue, score files and model folders.

Chapter 3 trains the methods with a `stage`, chapter 4 scores all of them (the two baselines
included) and compares them, and the ablations retrain InBoL: all of them read this table, so
a method is added or renamed here and nowhere else. A method is referred to by its `name`,
the value of the `method` column of every results table; `REGISTRY[name]` is its entry.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One row of the registry.

    name         the method in tables and figure legends (and in training.json)
    key          its glue keys (`<key>_test_trust`), score file (scores/<key>.parquet)
    label        a short name for narrow tables and image captions
    model        its model's folder inside a seed's folder (the base model for both baselines)
    stage        how it is trained: "idk_it" (SFT from the base model), "preferences" ((CA-)DPO
                 from IDK-IT), "control" (SFT on the pairs' chosen responses, from IDK-IT);
                 None for a baseline, which is not trained
    starts_from  the method whose model its training starts from (also DPO's reference)
    data         its training set inside a seed's folder
    tuned        the settings searched on the validation split (`protocol.candidates`)
    ca_mode      a preference stage's fixed CA-DPO form ("none": vanilla DPO); None: the
                 study's choice (notebook 03's `ca_mode`)
    """

    name: str
    key: str
    label: str
    model: str
    stage: str | None = None
    starts_from: str | None = None
    data: str | None = None
    tuned: tuple[str, ...] = ()
    ca_mode: str | None = None


REGISTRY = {m.name: m for m in (
    Method("base", "base", "base", "base_model"),
    # The base model, answering only when enough of its samples agree (`evaluation.abstention_responses`).
    Method("base + abstention", "abstain", "abstention", "base_model"),
    Method("IDK-IT", "idkit", "IDK-IT", "models/idkit", "idk_it", "base", "idk_it", ("lr",)),
    Method("IDK-IT + DPO", "dpo", "DPO", "models/dpo", "preferences", "IDK-IT", "preferences",
           ("lr", "beta"), ca_mode="none"),
    Method("InBoL (IDK-IT + CA-DPO)", "inbol", "InBoL", "models/inbol", "preferences", "IDK-IT",
           "preferences", ("lr", "beta")),
    Method("IDK-IT + chosen SFT (control)", "control", "control", "models/control", "control", "IDK-IT",
           "preferences", ("lr",)),
)}
METHODS = tuple(REGISTRY)  # the names, in the order of every table and legend
TRAINED = tuple(name for name, m in REGISTRY.items() if m.stage)  # chapter 3's methods
BASE, ABSTAIN, IDKIT, DPO, INBOL, CONTROL = METHODS

# Chapter 4's seed-paired comparisons, method -> its rivals: InBoL against the base model, the
# stage before it, vanilla DPO and the compute-matched control; DPO against the stage before it
# and the control, so that what preferences add without confidence is measured too.
COMPARISONS = {INBOL: (BASE, IDKIT, DPO, CONTROL), DPO: (IDKIT, CONTROL)}
