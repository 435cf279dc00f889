"""Every notebook's parameters, declared once: type, allowed values, meaning, and the inputs.

The runner checks each stage of a parameter file against these schemas before anything runs
(`problems`, on the notebook's defaults merged with the file's values), and each notebook checks
its own values in its first cell (`check`), so a notebook run alone with papermill stops there
too, before any work and without a half-written artifact. A message names the notebook, the
parameter, the value and what is allowed. tests/test_parameters.py keeps every schema equal to
its notebook's `parameters` cell.

This module imports nothing heavy, so the runner can check a file in well under a second. The
few vocabularies it shares with the package (regions, confidence signals, CA-DPO signals, Trust
costs) are restated here, and tests/test_parameters.py keeps them equal to the package's.
"""
from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, MutableMapping

REGIONS = ("inside", "beyond-intrinsic", "beyond-extrinsic")  # world.REGIONS
CONFIDENCE_SIGNALS = ("sampled", "likelihood")  # idk_data.CONFIDENCE_SIGNALS
CA_MODES = ("weight", "margin")  # dpo.CA_MODES besides "none" (vanilla DPO, always trained)
CA_SIGNALS = ("label", "policy", "both")  # dpo.CA_SIGNALS
C_VALUES = (0, 0.5, 1, 2, 4)  # metrics.C_VALUES: the Trust_c costs every score carries
ABLATIONS = ("pairs", "anchor", "ca_signal", "ca_mode", "tau", "signal", "sources")
SOURCES = ("generated", "easy_vqa", "datasets")  # sources.SOURCES
DTYPES = ("float32", "bfloat16", "float16", "auto")  # modeling.DTYPES
HEADS = 4  # modeling.ModelSize.heads: both widths are split across this many attention heads
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository (the package is installed editable)


class ParameterError(ValueError):
    """A parameter value, or an input artifact, the notebook cannot work with."""


@dataclass(frozen=True)
class Param:
    """One parameter. `kind` is "int", "real", "text", "path" or "mix" (region -> share);
    `many` makes it a list of such values, with at least `min_items` and, with `distinct`, no
    repeats. Bounds are inclusive (`low`, `high`) or strict (`above`)."""

    kind: str
    meaning: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple | None = None
    many: bool = False
    min_items: int = 1
    distinct: bool = True
    blank: bool = False  # a text that may be empty (meaning "none")
    optional: bool = False  # None (YAML null) is allowed, meaning "none"

    def allowed(self) -> str:
        """What is allowed, in words: the second half of every message about this parameter."""
        one = {"int": "an integer", "real": "a number", "text": "a string",
               "path": "a path (relative ones are read from the project's root)",
               "mix": f"a mapping from regions {list(REGIONS)} to shares in [0, 1]"}[self.kind]
        if self.choices is not None:
            one = f"one of {', '.join(map(repr, self.choices))}"
        elif self.low is not None and self.high is not None:
            one += f" in [{self.low:g}, {self.high:g}]"
        elif self.low is not None:
            one += f" >= {self.low:g}"
        elif self.above is not None:
            one += f" > {self.above:g}"
        if self.optional:
            one += " or null"
        if not self.many:
            return one
        size = "a list" if self.min_items == 0 else "a non-empty list"
        return f"{size} of {'distinct ' if self.distinct else ''}values, each {one}"

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed (None if it is)."""
        if not self.many:
            return None if self._fits(value) else self.allowed()
        if not isinstance(value, list) or not all(self._fits(v) for v in value):
            return self.allowed()
        if len(value) < self.min_items:
            return f"{self.allowed()} (got an empty list)"
        if self.distinct and len({json.dumps(v) for v in value}) != len(value):
            return f"{self.allowed()} (got a repeat)"
        return None

    def _fits(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "mix":
            return (isinstance(value, dict) and set(value) <= set(REGIONS)
                    and all(_is_real(v) and 0 <= v <= 1 for v in value.values()))
        if self.kind in ("text", "path"):
            if not isinstance(value, str) or not (value or self.blank):
                return False
        elif self.kind == "int":
            if not isinstance(value, int) or isinstance(value, bool):
                return False
        elif not _is_real(value) or not math.isfinite(value):
            return False
        if self.choices is not None:
            return value in self.choices
        return ((self.low is None or value >= self.low) and (self.high is None or value <= self.high)
                and (self.above is None or value > self.above))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    """A rule across parameters: `holds(values)`, else `message` formatted with the values."""

    holds: Callable[[Mapping[str, Any]], bool]
    message: str


@dataclass(frozen=True)
class Input:
    """An artifact a notebook reads, relative to `artifacts`; "{seed}" expands over `seeds`.
    A .json input must also parse: a truncated one is named, not met as a traceback later."""

    path: str
    made_by: str


@dataclass(frozen=True)
class Schema:
    params: dict[str, Param]
    rules: tuple[Rule, ...] = ()
    inputs: tuple[Input, ...] = ()


ARTIFACTS = Param("path", "the folder this notebook reads and writes (every stage's the same)")
WORKERS = Param("int", "parallel processes, one torch thread each; 0 chooses from the jobs and the CPU cores", low=0)
TAU = Param("real", "a query counts as known when its confidence is at least tau", low=0, high=1)
SIGNAL = Param("text", "which probe labels the data", choices=CONFIDENCE_SIGNALS)
BY_00 = "notebook 00 (world and base model)"
BY_01 = "notebook 01 (boundary definition)"
BY_02 = "notebook 02 (data generation)"
BY_03 = "notebook 03 (training)"
BY_04 = "notebook 04 (evaluation)"
WORLD = Input("seed{seed}/world/source.json", BY_00)  # every source writes it (facts.json: the generated world only)
BASE_MODEL = Input("seed{seed}/base_model/config.json", BY_00)
MIX_KEEPS_SOMETHING = Rule(lambda p: any(p["region_mix"].get(r, 1.0) > 0 for r in REGIONS),
                           "region_mix={region_mix} keeps no region at all; give some region a share > 0")


def _positive_int(meaning: str) -> Param:
    return Param("int", meaning, low=1)


SCHEMAS: dict[str, Schema] = {
    "00_world_and_base_model": Schema({
        "artifacts": ARTIFACTS,
        "world_seed": Param("int", "one world (the benchmark) for every seed; empty (null): each seed draws its "
                                   "own, world s for seed s", low=0, optional=True),
        "source": Param("text", "where the splits come from", choices=SOURCES),
        "source_path": Param("text", "source 'datasets' only: a local datasets folder or a cached hub name",
                             blank=True),
        "seeds": Param("int", "whole replicates: each its own base model, probe, data and trained models",
                       low=0, many=True),
        "workers": WORKERS,
        "n_base_perception": _positive_int("perception queries in base training"),
        "n_probe": _positive_int("queries of the InBoL training split, probed in 01 and halved in 02"),
        "n_validation": _positive_int("queries of the validation split, where every setting is chosen"),
        "n_test": _positive_int("queries of the in-domain test split"),
        "n_ood": _positive_int("queries of the out-of-domain test split"),
        "fact_scale": Param("real", "base-train rows per unit of fact exposure", low=0),
        "max_difficulty": Param("real", "difficulty of the hardest scenes (small, faint, noisy)", low=0, high=1),
        "knowledge_max_difficulty": Param("real", "difficulty of the scenes of knowledge queries", low=0, high=1),
        "base_model": Param("text", "a checkpoint (hub-format folder or hub id) to start from; empty: the "
                                    "study's own tiny LLaVA", blank=True),
        "dtype": Param("text", "the weights' dtype, kept by every later model", choices=DTYPES),
        "lora_rank": Param("int", "rank of the LoRA adapters base training fine-tunes; 0: every weight", low=0),
        "vision_width": Param("int", f"vision tower width, a multiple of its {HEADS} heads", low=HEADS),
        "vision_layers": _positive_int("vision tower layers"),
        "text_width": Param("int", f"language model width, a multiple of its {HEADS} heads", low=HEADS),
        "text_layers": _positive_int("language model layers"),
        "vision_steps": Param("int", "pretraining steps of the vision tower; 0 means none (it trains end to "
                                     "end)", low=0),
        "base_steps": Param("int", "the first schedule of each base model's training on the world; 0 (only with a "
                                   "base_model) uses the checkpoint as it is", low=0),
        "more_base_steps": _positive_int("each further schedule while a base model misses its targets"),
        "max_base_steps": Param("int", "the most steps a base model trains; one still short of its targets then is "
                                       "flagged", low=0),
        "batch_size": _positive_int("base training batch size"),
        "learning_rate": Param("real", "base training learning rate", above=0),
        "probe_every": _positive_int("steps between accuracy probes during base training"),
        "target_easy_perception": Param("real", "the validation accuracy a base model must reach on easy perception "
                                                "queries", low=0, high=1),
        "target_frequent_facts": Param("real", "the validation accuracy a base model must reach on facts of the two "
                                               "most often shown tiers", low=0, high=1),
    }, rules=(
        Rule(lambda p: (p["source"] == "datasets") == bool(p["source_path"]),
             "source_path={source_path!r} names the dataset of source 'datasets' and only that "
             "(source={source!r})"),
        Rule(lambda p: p["source"] != "datasets" or p["vision_steps"] == 0 or p["base_model"],
             "source 'datasets' has no image labels to pretrain the vision tower on: set vision_steps to 0"),
        Rule(lambda p: p["base_steps"] > 0 or p["base_model"],
             "base_steps={base_steps}: the study's own base model must be trained (base_steps >= 1); "
             "0 is for a base_model checkpoint used as it is"),
        Rule(lambda p: p["max_base_steps"] >= p["base_steps"],
             "max_base_steps={max_base_steps} is below base_steps={base_steps}; the cap must allow the first schedule"),
        Rule(lambda p: p["vision_width"] % HEADS == 0 and p["text_width"] % HEADS == 0,
             f"vision_width={{vision_width}} and text_width={{text_width}} must be multiples of {HEADS} "
             f"(the attention heads)"),
    )),
    "01_boundary_definition": Schema({
        "artifacts": ARTIFACTS,
        "seeds": Param("int", "the seeds whose base models are probed", low=0, many=True),
        "workers": WORKERS,
        "n_samples": _positive_int("N, the samples per query of the confidence that labels the data"),
        "n_values": Param("int", "the N sweep on the first seed", low=1, many=True),
        "temperature": Param("real", "sampling temperature of the probe", above=0),
        "tau": TAU,
        "confidence_signal": SIGNAL,
        "batch_size": _positive_int("queries per batch of the probe"),
    }, rules=(
        Rule(lambda p: p["n_samples"] in p["n_values"], "n_samples={n_samples} must be one of n_values={n_values}"),
    ), inputs=(WORLD, BASE_MODEL)),
    "02_data_generation": Schema({
        "artifacts": ARTIFACTS,
        "seeds": Param("int", "the seeds whose probes are labelled", low=0, many=True),
        "tau": TAU,
        "confidence_signal": SIGNAL,
        "region_mix": Param("mix", "the share of each region's rows kept in the training data"),
    }, rules=(MIX_KEEPS_SOMETHING,),
        inputs=(WORLD, Input("seed{seed}/boundary.parquet", BY_01))),
    "03_training": Schema({
        "artifacts": ARTIFACTS,
        "seeds": Param("int", "the seeds trained; the first one's validation split chooses every setting",
                       low=0, many=True),
        "workers": WORKERS,
        "idk_steps": _positive_int("IDK-IT's schedule length"),
        "idk_lr_values": Param("real", "IDK-IT learning rates tried", above=0, many=True),
        "idk_batch_size": _positive_int("IDK-IT batch size"),
        "idk_eval_every": _positive_int("steps between IDK-IT's validation scores"),
        "pair_samples": _positive_int("IDK-IT samples per half-B query for the on-policy pairs"),
        "pair_temperature": Param("real", "sampling temperature of the on-policy pairs", above=0),
        "pref_steps": _positive_int("the preference stages' and the control's schedule length"),
        "pref_lr_values": Param("real", "preference and control learning rates tried", above=0, many=True),
        "beta_values": Param("real", "DPO and CA-DPO beta values tried", above=0, many=True),
        "pref_batch_size": _positive_int("preference batch size, in pairs"),
        "pref_eval_every": _positive_int("steps between the preference stages' validation scores"),
        "anchor_weight": Param("real", "weight of the chosen responses' NLL in the loss; 0 means no anchor", low=0),
        "ca_mode": Param("text", "CA-DPO's form; vanilla DPO is trained anyway", choices=CA_MODES),
        "ca_signal": Param("text", "CA-DPO's certainty: label, policy or both", choices=CA_SIGNALS),
        "lora_rank": Param("int", "rank of the LoRA adapters every method trains; 0: every weight", low=0),
    }, inputs=(WORLD, BASE_MODEL, Input("seed{seed}/labels.parquet", BY_02),
               Input("seed{seed}/idk_it/labelling.json", BY_02))),
    "04_evaluation": Schema({
        "artifacts": ARTIFACTS,
        "workers": WORKERS,
        "abstain_samples": _positive_int("samples per query of the abstention baseline"),
        "abstain_threshold": Param("real", "the abstention baseline answers if this share of samples agree",
                                   low=0, high=1),
        "c_values": Param("real", "the costs c of a wrong answer shown for Trust_c", choices=C_VALUES, many=True),
        "ablations": Param("text", "the ablations run on the first seed", choices=ABLATIONS, many=True,
                           min_items=0),
        "tau_values": Param("real", "the tau of the tau ablation", low=0, high=1, many=True, min_items=0),
        "signal_values": Param("text", "the labelling signals of the signal ablation", choices=CONFIDENCE_SIGNALS,
                               many=True, min_items=0),
        "compare_with": Param("path", "another run's artifacts folder whose verdicts this run is set beside "
                                      "(empty: none)", blank=True),
    }, rules=(
        Rule(lambda p: "tau" not in p["ablations"] or p["tau_values"],
             "ablations={ablations} include 'tau', so tau_values must not be empty"),
        Rule(lambda p: "signal" not in p["ablations"] or p["signal_values"],
             "ablations={ablations} include 'signal', so signal_values must not be empty"),
    ), inputs=(Input("results/base_models.csv", BY_00), Input("training.json", BY_03))),
    "05_label_noise": Schema({
        "artifacts": ARTIFACTS,
        "workers": WORKERS,
        "noise_n_values": Param("int", "the probe sizes N whose sampled confidences relabel half B in the "
                                       "label-noise study, at most chapter 1's n_samples (the exact likelihood is "
                                       "always added; empty: no study)", low=1, many=True, min_items=0),
    }, inputs=(Input("training.json", BY_03), Input("results/responses.csv", BY_04))),
    "06_scaling_up": Schema({
        "artifacts": ARTIFACTS,
        "seeds": Param("int", "the run's seeds; the first one's processor and IDK-IT rows are measured",
                       low=0, many=True),
        "target_params": Param("path", "the parameter file of the run to price: params/hub.yaml or a copy "
                                       "with other sizes"),
        "model_params": Param("real", "the parameters of the target's model", above=0),
        "tokenizer_factor": Param("real", "tokens of the target's real tokenizer per token of its word-level "
                                          "stand-in: an assumption, the real one is not available offline",
                                  above=0),
        "template_rows": _positive_int("rows of the first seed's IDK-IT set encoded through both templates"),
        "peak_tflops": Param("real", "the GPU's dense bf16 peak in TFLOP/s", above=0),
        "mfu": Param("real", "the share of the peak that training steps and forward passes reach",
                     low=0.01, high=1),
        "decode_tokens_per_s": Param("real", "tokens generated a second", above=0),
        "pessimistic_mfu": Param("real", "mfu of the pessimistic estimate", low=0.01, high=1),
        "pessimistic_decode_tokens_per_s": Param("real", "decode_tokens_per_s of the pessimistic estimate",
                                                 above=0),
    }, rules=(
        Rule(lambda p: p["pessimistic_mfu"] <= p["mfu"]
             and p["pessimistic_decode_tokens_per_s"] <= p["decode_tokens_per_s"],
             "the pessimistic rates (pessimistic_mfu={pessimistic_mfu}, pessimistic_decode_tokens_per_s="
             "{pessimistic_decode_tokens_per_s}) must not exceed mfu={mfu} and decode_tokens_per_s="
             "{decode_tokens_per_s}"),
    ), inputs=(Input("profile.json", "the runner (python -m inbol_utils.runner.pipeline), after every stage"),
               BASE_MODEL, Input("seed{seed}/idk_it/labelling.json", BY_02))),
}


def schema(notebook: str) -> Schema:
    """The schema of a notebook, by its file's stem (e.g. "03_training")."""
    if notebook not in SCHEMAS:
        raise ParameterError(f"No parameter schema for notebook {notebook!r}; declare its parameters in "
                             f"inbol_utils/runner/parameters.py (known: {sorted(SCHEMAS)}).")
    return SCHEMAS[notebook]


def problems(notebook: str, values: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a notebook's full set of parameter values, one message each:
    unknown names, missing ones, values outside what is allowed, then the cross-parameter
    rules (only once every value is allowed on its own)."""
    spec = schema(notebook).params
    found = [f"{notebook}: unknown parameter {name!r} = {values[name]!r}; its parameters are "
             f"{', '.join(spec)}{_owner_hint(name)}" for name in values if name not in spec]
    found += [f"{notebook}: parameter {name!r} is missing" for name in spec if name not in values]
    for name, param in spec.items():
        if name in values and (why := param.problem(values[name])) is not None:
            found.append(f"{notebook}: {name} = {values[name]!r} is not allowed; {name} ({param.meaning}) "
                         f"must be {why}{_hint(param, values[name])}")
    if not found:
        found += [f"{notebook}: {rule.message.format(**values)}" for rule in schema(notebook).rules
                  if not rule.holds(values)]
    return found


def across_stages(values: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What one notebook's values ask of another's (`values`: each stage's, by stem), checked
    before anything runs: chapter 5's label sets read chapter 1's probe samples, so a label set
    larger than n_samples would stop the run after chapters 0-4 had run. Only the generated
    world records the true boundary the study needs; on another source it does not run."""
    world, probe, noise = (values.get(stem) for stem in
                           ("00_world_and_base_model", "01_boundary_definition", "05_label_noise"))
    if not (probe and noise and noise["noise_n_values"]) or (world and world["source"] != "generated"):
        return []
    too_large = sorted(n for n in set(noise["noise_n_values"]) if n > probe["n_samples"])
    if not too_large:
        return []
    return [f"05_label_noise: noise_n_values = {noise['noise_n_values']} asks for label sets of "
            f"{', '.join(map(str, too_large))} probe samples, but 01_boundary_definition draws n_samples = "
            f"{probe['n_samples']}: keep noise_n_values at most {probe['n_samples']} "
            f"(e.g. {[n for n in noise['noise_n_values'] if n <= probe['n_samples']]}), or raise n_samples"]


def _owner_hint(name: str) -> str:
    """Where a parameter another notebook declares belongs (one that moved between notebooks,
    as noise_n_values did from 04 to 05, is usually where a parameter file still has it)."""
    owners = [notebook for notebook, spec in SCHEMAS.items() if name in spec.params]
    return f" ({name} is a parameter of {' and '.join(owners)})" if owners else ""


def _hint(param: Param, value: Any) -> str:
    """Text where a list or mapping was meant is usually how it was passed, not what was meant."""
    if isinstance(value, str) and (param.many or param.kind == "mix"):
        return (". With papermill, -p passes text: pass lists and mappings with -y, "
                "e.g. -y 'seeds: [0, 1]'")
    return ""


def project_path(path: str | Path) -> Path:
    """`path` read from the project's root (the folder above the package, where the runner runs
    every notebook) unless it is absolute."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def shown_path(path: str | Path) -> str:
    """`path` as a params file would give it: relative to the project's root when it lies inside,
    so a page never shows the folder of the machine that built the book (`check` has made it
    absolute)."""
    path = Path(path)
    return path.relative_to(PROJECT_ROOT).as_posix() if path.is_relative_to(PROJECT_ROOT) else str(path)


def missing_inputs(notebook: str, values: Mapping[str, Any]) -> list[str]:
    """The notebook's input artifacts that are absent or unreadable, one message each."""
    found = []
    for item in schema(notebook).inputs:
        seeds = values.get("seeds", []) if "{seed}" in item.path else [None]
        for seed in seeds:
            path = Path(values["artifacts"]) / item.path.format(seed=seed)
            if not path.exists():
                found.append(f"{notebook}: missing artifact {path}. It is written by {item.made_by}; run that "
                             f"stage first with the same `artifacts`.")
            elif path.suffix == ".json" and (why := _unreadable_json(path)):
                found.append(f"{notebook}: corrupted artifact {path} ({why}). It is written by "
                             f"{item.made_by}; run that stage again.")
    return found


def _unreadable_json(path: Path) -> str | None:
    try:
        json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"not valid JSON: {err}"
    return None


def injected_names(history: list[str]) -> list[str]:
    """The names papermill injected (its cell starts with "# Parameters"), from the kernel's
    history of executed cells: papermill only warns about a name the notebook does not declare,
    and the notebook would then run on without it."""
    names = []
    for source in history:
        if source.startswith("# Parameters\n"):
            names = [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
                     for t in node.targets if isinstance(t, ast.Name)]
    return names


def check(notebook: str, namespace: MutableMapping[str, Any]) -> None:
    """A notebook's first call after its parameters cell: `check("03_training", globals())`.
    Stops with every problem at once: names papermill was given that the notebook does not
    declare, values not allowed, broken cross-parameter rules, missing or corrupted inputs.
    First it makes every relative path parameter (`artifacts`, `target_params`) absolute, read
    from the project's root (`project_path`), so that the notebook means the same path whether
    the runner runs it there or Jupyter opens it in notebooks/."""
    spec = schema(notebook).params
    for name, param in spec.items():
        if param.kind == "path" and isinstance(namespace.get(name), str) and namespace[name]:
            namespace[name] = str(project_path(namespace[name]))
    values = {name: namespace[name] for name in spec if name in namespace}
    values |= {name: namespace[name] for name in injected_names(namespace.get("In", [])) if name in namespace}
    found = problems(notebook, values) or missing_inputs(notebook, values)
    if found:
        raise ParameterError("\n".join(found))

