"""Parameter schemas (inbol_utils.runner.parameters): each notebook's schema is its parameters cell, and
bad inputs stop before any work with a message naming the notebook, parameter, value and what
is allowed, leaving the artifacts as they were.

Most bad inputs go through the runner, which checks every stage before it starts a kernel; two
go through papermill on a single notebook, where the notebook's first cell checks them.
"""
from __future__ import annotations

from pathlib import Path

import papermill
import pytest
import yaml

from inbol_utils import ablations, dpo, idk_data, metrics, modeling, sources, world
from inbol_utils.runner import parameters, pipeline, staging
from inbol_utils.runner.pipeline import PipelineError, run_pipeline

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_schema_is_its_notebooks_parameters_cell(notebook):
    """The two cannot drift: the same names, and the notebook's defaults are allowed values."""
    declared = pipeline.notebook_defaults(notebook)
    assert list(declared) == list(parameters.schema(notebook.stem).params)
    assert parameters.problems(notebook.stem, declared) == []
    assert all(p.meaning for p in parameters.schema(notebook.stem).params.values())


def test_the_schemas_vocabularies_are_the_packages():
    assert parameters.REGIONS == world.REGIONS
    assert parameters.CONFIDENCE_SIGNALS == tuple(idk_data.CONFIDENCE_SIGNALS)
    assert parameters.CA_SIGNALS == dpo.CA_SIGNALS
    assert ("none", *parameters.CA_MODES) == dpo.CA_MODES
    assert parameters.C_VALUES == metrics.C_VALUES
    assert parameters.HEADS == modeling.ModelSize().heads
    assert parameters.ABLATIONS == ablations.ABLATIONS
    assert parameters.DTYPES == modeling.DTYPES
    assert parameters.SOURCES == sources.SOURCES


def test_kinds_bounds_and_lists():
    steps = parameters.Param("int", "steps", low=1)
    assert steps.problem(3) is None
    assert steps.problem(2.5) == steps.problem(True) == steps.problem("3") == "an integer >= 1"
    lrs = parameters.Param("real", "lrs", above=0, many=True)
    assert lrs.problem([1e-4, 1]) is None
    assert lrs.problem([]).endswith("(got an empty list)")
    assert lrs.problem([1e-4, 1e-4]).endswith("(got a repeat)")
    assert lrs.problem([float("nan")]) == lrs.problem("1e-4") == lrs.allowed()
    mix = parameters.Param("mix", "mix")
    assert mix.problem({"inside": 0.5}) is None and mix.problem({"outside": 0.5}) is not None
    assert parameters.injected_names(["x = 1", "# Parameters\nseeds = [0]\nidk_lr = 'fast'\n"]) == ["seeds", "idk_lr"]


# ---------------------------------------------------------------------------------------------
# bad inputs through the runner: stopped before any kernel starts, artifacts untouched


def stage(raw: dict, stem: str) -> dict:
    """The `parameters` of the stage whose notebook starts with `stem` (e.g. "03")."""
    entry = next(s for s in raw["stages"] if Path(s["notebook"]).name.startswith(stem))
    entry["parameters"] = entry.get("parameters") or {}
    return entry["parameters"]


def set_common(**values):
    return lambda raw: raw["common"].update(values)


def set_stage(stem, **values):
    return lambda raw: stage(raw, stem).update(values)


BAD = {  # name: (change to params/smoke.yaml, what the message must say)
    "00 empty seeds": (set_common(seeds=[]),
                       "00_world_and_base_model: seeds = [] is not allowed; seeds (whole replicates"),
    "00 repeated seeds": (set_common(seeds=[0, 0]), "seeds = [0, 0] is not allowed; "),
    "00 width not split over heads": (set_stage("00", text_width=30),
                                      "00_world_and_base_model: vision_width=32 and text_width=30 must be "
                                      "multiples of 4"),
    "00 negative fact scale": (set_stage("00", fact_scale=-1),
                               "00_world_and_base_model: fact_scale = -1 is not allowed; fact_scale "
                               "(base-train rows per unit of fact exposure) must be a number >= 0"),
    "00 fractional steps": (set_stage("00", base_steps=2.5), "base_steps = 2.5 is not allowed; "
                            "base_steps (the first schedule of each base model's training on the world; 0 (only "
                            "with a base_model) uses the checkpoint as it is) must be an integer >= 0"),
    "00 a cap below the first schedule": (set_stage("00", max_base_steps=6),
                                          "00_world_and_base_model: max_base_steps=6 is below base_steps=12; the "
                                          "cap must allow the first schedule"),
    "00 a world as a word": (set_common(world_seed="three"),
                             "world_seed = 'three' is not allowed; world_seed (one world (the benchmark) for every "
                             "seed; empty (null): each seed draws its own, world s for seed s) must be an integer "
                             ">= 0 or null"),
    "01 n_samples outside the sweep": (set_stage("01", n_samples=5),
                                       "01_boundary_definition: n_samples=5 must be one of n_values=[1, 3]"),
    "01 zero temperature": (set_stage("01", temperature=0), "temperature = 0 is not allowed; temperature "
                            "(sampling temperature of the probe) must be a number > 0"),
    "01 tau as a word": (set_common(tau="high"),
                         "01_boundary_definition: tau = 'high' is not allowed; tau (a query counts as "
                         "known when its confidence is at least tau) must be a number in [0, 1]"),
    "02 unknown signal": (set_stage("02", confidence_signal="magic"),
                          "02_data_generation: confidence_signal = 'magic' is not allowed; "
                          "confidence_signal (which probe labels the data) must be one of 'sampled', 'likelihood'"),
    "02 share above 1": (set_stage("02", region_mix={"inside": 2}), "region_mix = {'inside': 2} is not allowed"),
    "02 mix keeps nothing": (set_stage("02", region_mix={r: 0 for r in parameters.REGIONS}),
                             "keeps no region at all"),
    "03 negative beta": (set_stage("03", beta_values=[-0.5]),
                         "03_training: beta_values = [-0.5] is not allowed; beta_values (DPO and CA-DPO "
                         "beta values tried) must be a non-empty list of distinct values, each a number > 0"),
    "03 learning rates as a word": (set_stage("03", idk_lr_values="fast"), "idk_lr_values = 'fast' is not allowed"),
    "03 repeated learning rate": (set_stage("03", pref_lr_values=[0.001, 0.001]), "(got a repeat)"),
    "03 unknown CA mode": (set_stage("03", ca_mode="bogus"),
                           "03_training: ca_mode = 'bogus' is not allowed; ca_mode (CA-DPO's form; vanilla "
                           "DPO is trained anyway) must be one of 'weight', 'margin'"),
    "03 misspelt name": (set_stage("03", idk_lr=0.1), "stage 3: 03_training: unknown parameter 'idk_lr' = 0.1; "
                         "its parameters are artifacts, seeds, workers, idk_steps, idk_lr_values"),
    "04 unknown ablation": (set_stage("04", ablations=["pairs", "bogus"]),
                            "04_evaluation: ablations = ['pairs', 'bogus'] is not allowed; ablations (the "
                            "ablations run on the first seed) must be a list of distinct values, each one of "
                            "'pairs', 'anchor'"),
    "04 tau ablation without taus": (set_stage("04", ablations=["tau"], tau_values=[]),
                                     "include 'tau', so tau_values must not be empty"),
    "04 a Trust cost not computed": (set_stage("04", c_values=[3]), "c_values = [3] is not allowed"),
    "04 negative workers": (set_common(workers=-1), "04_evaluation: workers = -1 is not allowed"),
    "04 a parameter that moved to 05": (set_stage("04", noise_n_values=[1, 3]),
                                        "04_evaluation: unknown parameter 'noise_n_values' = [1, 3]; its parameters "
                                        "are artifacts, workers, abstain_samples"),
    "04 a parameter that moved, where it belongs": (set_stage("04", noise_n_values=[1, 3]),
                                                    "(noise_n_values is a parameter of 05_label_noise)"),
    "05 label sets above 01's samples": (set_stage("05", noise_n_values=[1, 3, 4]),
                                         "05_label_noise: noise_n_values = [1, 3, 4] asks for label sets of 4 probe "
                                         "samples, but 01_boundary_definition draws n_samples = 3: keep noise_n_values "
                                         "at most 3 (e.g. [1, 3]), or raise n_samples"),
    "06 mfu above the peak": (set_stage("06", mfu=1.5), "06_scaling_up: mfu = 1.5 is not allowed; mfu (the share "
                              "of the peak that training steps and forward passes reach) must be a number in [0.01, 1]"),
    "06 pessimistic above the estimate": (set_stage("06", pessimistic_decode_tokens_per_s=5000.0),
                                          "06_scaling_up: the pessimistic rates (pessimistic_mfu=0.1, "
                                          "pessimistic_decode_tokens_per_s=5000.0) must not exceed mfu=0.25"),
}


@pytest.fixture
def artifacts(tmp_path) -> Path:
    """An artifacts folder with something in it, to show that nothing changes."""
    folder = tmp_path / "artifacts"
    (folder / "seed0" / "world").mkdir(parents=True)
    (folder / "seed0" / "world" / "source.json").write_text("{}")
    (folder / "results").mkdir()
    (folder / "results" / "per_seed.csv").write_text("method,seed\n")
    return folder


def smoke_params(tmp_path: Path, artifacts: Path, change=lambda raw: None) -> Path:
    raw = yaml.safe_load((REPO / "params" / "smoke.yaml").read_text())
    raw["artifacts"] = str(artifacts)
    change(raw)
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_stops(params: Path, artifacts: Path, message: str, **options) -> str:
    """The runner stops with `message`, before any notebook ran and with no artifact changed."""
    before = tree(artifacts)
    executed = params.parent / "executed"
    with pytest.raises(PipelineError) as info:
        run_pipeline(params, executed, **options)
    assert message in str(info.value)
    assert tree(artifacts) == before
    assert not list(executed.glob("*.ipynb")) and not staging.snapshot_dir(artifacts).exists()
    return str(info.value)


@pytest.mark.parametrize("name", BAD)
def test_bad_parameters_stop_the_runner_before_any_work(name, tmp_path, artifacts):
    change, message = BAD[name]
    assert_stops(smoke_params(tmp_path, artifacts, change), artifacts, message)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path, artifacts):
    change = set_common(seeds=[])
    message = assert_stops(smoke_params(tmp_path, artifacts, lambda raw: (change(raw), set_stage("03", ca_mode="x")(raw))),
                           artifacts, "stage 3: 03_training: ca_mode = 'x'")
    assert message.count("seeds = [] is not allowed") == 5  # 00 to 03 and 05 declare seeds


def test_yaml_exponents_are_numbers(tmp_path, artifacts):
    """YAML 1.1 reads 5e-4 as text; the runner reads it as the number it looks like."""
    text = (REPO / "params" / "smoke.yaml").read_text()
    params = tmp_path / "smoke.yaml"
    params.write_text(text.replace("data/smoke", str(artifacts)).replace("base_steps: 12,", "base_steps: 12, learning_rate: 5e-4,"))
    stages = pipeline.load_params(params)["stages"]
    assert stages[0]["parameters"]["learning_rate"] == 5e-4


@pytest.mark.parametrize("text, message", [
    ("- notebook: notebooks/00_world_and_base_model.ipynb\n", "must be a mapping (key: value), got list"),
    ("artifacts: [unclosed\n", "is not valid YAML"),
])
def test_a_file_that_is_not_a_mapping_is_named(tmp_path, artifacts, text, message):
    params = tmp_path / "broken.yaml"
    params.write_text(text)
    assert_stops(params, artifacts, message)


def test_a_missing_input_stops_the_runner_before_the_kernel(tmp_path, artifacts):
    params = smoke_params(tmp_path, artifacts)
    message = assert_stops(params, artifacts, "03_training: missing artifact ", only=["03_training"])
    assert f"{artifacts}/seed0/base_model/config.json. It is written by notebook 00" in message
    assert f"{artifacts}/seed1/labels.parquet. It is written by notebook 02 (data generation)" in message


def test_chapter_6_needs_the_runners_profile(tmp_path, artifacts):
    params = smoke_params(tmp_path, artifacts)
    assert_stops(params, artifacts, f"06_scaling_up: missing artifact {artifacts}/profile.json. It is written by the "
                 "runner (python -m inbol_utils.runner.pipeline), after every stage", only=["06_scaling_up"])


def test_chapter_5_needs_chapter_4s_scored_responses(tmp_path, artifacts):
    params = smoke_params(tmp_path, artifacts)
    assert_stops(params, artifacts, f"05_label_noise: missing artifact {artifacts}/results/responses.csv. It is "
                 "written by notebook 04 (evaluation)", only=["05_label_noise"])


def test_a_corrupted_input_is_named(tmp_path, artifacts):
    (artifacts / "training.json").write_text('{"seeds": [0, 1], "cho')  # cut short
    params = smoke_params(tmp_path, artifacts)
    assert_stops(params, artifacts, f"04_evaluation: corrupted artifact {artifacts}/training.json (not valid "
                 "JSON: Unterminated string", only=["04_evaluation"])


# ---------------------------------------------------------------------------------------------
# a notebook run alone with papermill checks itself, in its first cell


@pytest.mark.slow
@pytest.mark.parametrize("notebook, given, messages", [
    ("03_training", {"idk_lr": "fast", "beta_values": [-0.5], "seeds": "[0, 1]"},
     ["03_training: unknown parameter 'idk_lr' = 'fast'; its parameters are artifacts, seeds",
      "beta_values = [-0.5] is not allowed",
      "seeds = '[0, 1]' is not allowed; seeds (the seeds trained; the first one's validation split chooses every "
      "setting) must be a non-empty list of distinct values, each an integer >= 0. With papermill, -p passes "
      "text: pass lists and mappings with -y"]),
    ("04_evaluation", {}, ["04_evaluation: missing artifact {artifacts}/training.json. It is written by notebook "
                           "03 (training)"]),
], ids=["bad values", "missing input"])
def test_a_notebook_alone_stops_in_its_first_cell(notebook, given, messages, tmp_path, artifacts):
    before = tree(artifacts)
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(REPO / "notebooks" / f"{notebook}.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"artifacts": str(artifacts), **given}, kernel_name="python3",
                                   progress_bar=False, cwd=str(REPO))
    assert info.value.ename == "ParameterError" and info.value.exec_count == 3  # the cell after the parameters
    for message in messages:
        assert message.format(artifacts=artifacts) in info.value.evalue
    assert tree(artifacts) == before


def test_check_reads_relative_paths_from_the_project_root(tmp_path, monkeypatch):
    """Jupyter starts a kernel in notebooks/: `artifacts = "data/x"` must still mean the project's
    data/x, as it does for the runner, and a missing input is named by that full path."""
    monkeypatch.chdir(REPO / "notebooks")
    namespace = pipeline.notebook_defaults(REPO / "notebooks" / "06_scaling_up.ipynb") | {"artifacts": "data/not-run-yet"}
    assert namespace["target_params"] == "params/hub.yaml"
    with pytest.raises(parameters.ParameterError, match=str(REPO / "data" / "not-run-yet" / "profile.json")):
        parameters.check("06_scaling_up", namespace)
    assert namespace["artifacts"] == str(REPO / "data" / "not-run-yet")
    assert namespace["target_params"] == str(REPO / "params" / "hub.yaml")
    absolute = pipeline.notebook_defaults(REPO / "notebooks" / "02_data_generation.ipynb") | {"artifacts": str(tmp_path)}
    with pytest.raises(parameters.ParameterError):
        parameters.check("02_data_generation", absolute)
    assert absolute["artifacts"] == str(tmp_path)  # an absolute path stays as it is
    # and a page shows a path inside the project as the params file gave it
    assert parameters.shown_path(namespace["artifacts"]) == "data/not-run-yet"
    assert parameters.shown_path(tmp_path) == str(tmp_path)
