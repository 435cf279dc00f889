"""The whole pipeline with tiny parameters, then a strict book build: what `make book` does.
On the way, chapters 4 and 5 run a second time on a copy of the artifacts, in another process under
another Python hash seed, and must write byte-identical results files (the book's promise:
same machine, same bytes). They run beside the first copy's chapters 4-6 and the book build, on the
second core that the other pytest worker has usually left by then. Last, every page of the book
in headless Chromium, offline (tests/browser.py)."""
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
import yaml

import browser
from inbol_utils.book import costs
from inbol_utils.book.prose import glued_values
from inbol_utils.runner import environment, pipeline
from inbol_utils import methods, metrics, protocol
from inbol_utils.runner.pipeline import partial_notebook, run_pipeline
from inbol_utils.book.profile_book import profile_toc
from prose import contradictions

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PAGE = "book/executed/default/04_evaluation.html"
RUNNING_PAGE = "book/running.html"  # the Reference part's "Running the study", which the README points to
STAGES = ["00_world_and_base_model", "01_boundary_definition", "02_data_generation", "03_training",
          "04_evaluation", "05_label_noise", "06_scaling_up"]


def predicted_rows(profile: Path) -> pd.DataFrame:
    """Each (stage, part) a run measured, beside the rows `costs.ROWS_OF` gives for the
    parameters it ran with (nan where a part has no formula)."""
    frame, params = costs.measured(profile), costs.measured_parameters(profile)
    keys = zip(frame["stage"], frame["part"])
    return frame.assign(rows_formula=[costs.ROWS_OF[k](costs.namespace(params, k[0])) if k in costs.ROWS_OF
                                      else math.nan for k in keys])


def smoke_params(path: Path, artifacts: Path) -> Path:
    path.write_text((ROOT / "params" / "smoke.yaml").read_text()
                    .replace("artifacts: data/smoke", f"artifacts: {artifacts}"))
    return path


@pytest.mark.slow
def test_smoke_pipeline_reproduces_its_results_and_builds_the_book(tmp_path, monkeypatch, record_property):
    book = tmp_path / "book_root"
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("executed"))
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    shutil.copytree(ROOT / "_static", book / "_static")
    shutil.copytree(ROOT / "inbol_utils", book / "inbol_utils")  # the chapters' literalinclude blocks
    artifacts, twin = tmp_path / "artifacts", tmp_path / "twin"
    params = smoke_params(tmp_path / "smoke.yaml", artifacts)
    chapters = book / "book" / "executed" / "default"  # where _toc.yml reads the default profile
    toc = profile_toc(yaml.safe_load((ROOT / "_toc.yml").read_text()), "default", STAGES)  # no easy-VQA part
    (book / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))

    monkeypatch.setenv("PYTHONHASHSEED", "1")
    records = run_pipeline(params, chapters, force=True, only=STAGES[:4])
    assert [r["status"] for r in records] == ["ran"] * 4 + ["not selected"] * 3
    shutil.copytree(artifacts, twin, copy_function=os.link)  # every write replaces files: links are safe
    rerun = subprocess.Popen(
        [sys.executable, "-m", "inbol_utils.runner.pipeline", str(smoke_params(tmp_path / "twin.yaml", twin)),
         "--only", "04_evaluation", "05_label_noise", "--executed-dir", str(tmp_path / "twin_chapters")],
        env={**os.environ, "PYTHONHASHSEED": "2"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    records += run_pipeline(params, chapters)
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book),
                            "-W", "-n", "--keep-going"], capture_output=True, text=True)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    assert [r["status"] for r in records[7:]] == ["skipped"] * 4 + ["ran"] * 3
    assert all(r["written_in_place"] == [] for r in records if r["status"] == "ran")

    results = artifacts / "results"
    names = sorted(p.name for p in results.iterdir())
    assert names == sorted(p.name for p in (twin / "results").iterdir())
    for name in names:  # same machine, same code and parameters: the same bytes
        assert (results / name).read_bytes() == (twin / "results" / name).read_bytes(), name
    responses = pd.read_csv(results / "responses.csv").set_index(["method", "split", "id", "seed"])["response"]
    for method in methods.TRAINED:  # another seed is another replicate: other models, other answers
        assert (responses[method].xs(0, level="seed") != responses[method].xs(1, level="seed")).any(), method

    assert sorted(p.name for p in chapters.iterdir()) == [f"{stem}.ipynb" for stem in STAGES] + ["results"]
    csvs = sorted(p.name for p in results.glob("*.csv"))  # what the chapters link as downloads
    assert sorted(p.name for p in (chapters / "results").iterdir()) == csvs
    assert not list(partial_notebook(artifacts, "x").parent.glob("*.ipynb"))
    for executed in chapters.glob("*.ipynb"):
        notebook = nbformat.read(executed, as_version=4)
        errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{executed.name} has error output"
    for name in ("main_table.csv", "main_table.json", "per_seed.csv", "comparisons.csv", "selection.csv",
                 "ablations.csv", "heldout_refusal.csv", "environment.json", "base_models.csv", "frontier.csv",
                 "aurc.csv", "replicate_differences.csv", "label_noise_curve.csv", "label_noise_weights.csv"):
        assert (results / name).stat().st_size > 0
    # The label-noise study: N=3 gives chapter 2's labels (the main table's point); the likelihood's
    # confidences differ, so its set trains (N=1 may agree with N=3: this base model knows nothing).
    chapter_two = pd.read_csv(results / "label_noise_errors.csv").groupby("label_set")["chapter_two"].all()
    assert chapter_two["N=3"] and not chapter_two["likelihood"]
    assert set(pd.read_csv(results / "label_noise.csv")["label_set"]) == {"N=1", "N=3", "likelihood"}
    selection = pd.read_csv(results / "selection.csv")
    assert selection.groupby("method")["selected"].sum().to_dict() == {m: 1 for m in methods.TRAINED}
    comparisons = pd.read_csv(results / "comparisons.csv")
    assert set(comparisons["verdict"]) == {metrics.TOO_FEW}  # two seeds: no verdict is read from them
    # The GPU-hour estimate's row formulas follow what the notebooks put through the model: within
    # the share of answerable queries (likelihoods count gold answers), prefetched batches and
    # checkpoints chosen before the schedule's end.
    # Chapter 5's count every label set that could train, but a set that draws chapter 2's labels
    # trains nothing: here N=1 may (this base model knows nothing), one set of the two counted.
    rows = predicted_rows(artifacts / "profile.json")
    ratio, noise = rows["rows"] / rows["rows_formula"], rows["stage"] == "05_label_noise"
    assert ratio[~noise].dropna().between(0.6, 1.3).all() and ratio[noise].between(0.4, 1.3).all(), rows.to_string()
    for seed in (0, 1):  # every seed has its own world, base model and trained methods
        home = protocol.seed_dir(artifacts, seed)
        assert all((protocol.model_dir(home, m) / "config.json").is_file() for m in methods.TRAINED)
        assert (home / "base_model" / "config.json").is_file()
    worlds = [json.loads((protocol.world_dir(artifacts, s) / "facts.json").read_text()) for s in (0, 1)]
    assert worlds[0] != worlds[1]  # world s for seed s: other facts, other exposure tiers
    # The smoke run's base models are far too small to meet their targets: flagged, never silent.
    base = pd.read_csv(results / "base_models.csv")
    assert base["world"].tolist() == [0, 1] and not base["meets_targets"].any()
    assert len(pipeline.base_model_warnings(artifacts)) == 2

    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = book / "_build" / "html"
    assert sorted(p.name for p in (html / "_downloads").rglob("*.csv")) == csvs  # every one linked
    pages = {page: (html / "book" / "executed" / "default" / f"{page}.html").read_text()
             for page in ("00_world_and_base_model", "04_evaluation", "05_label_noise", "06_scaling_up")}
    assert not [page for page, text in pages.items() if "Traceback" in text]
    assert "2 of 2 base models miss their targets" in pages["00_world_and_base_model"]
    assert "Wang <em>et al.</em>" in (html / "book" / "intro.html").read_text()  # sphinxcontrib-bibtex's citations
    assert "drawing the line: enhancing" in (html / "book" / "references.html").read_text().lower()
    assert environment.cpu_name() in pages["04_evaluation"]  # chapter 4 states the machine its results came from
    assert contradictions(chapters, html / "book" / "executed" / "default", html / "book") == []
    # Chapter 6 prices params/hub.yaml from this run's profile: Qwen2-VL's template adds a system
    # turn to every row, and the stages' hours add up to the glued total.
    scaling = glued_values(chapters / "06_scaling_up.ipynb")
    assert scaling["template_factor_prompt"] > scaling["template_factor_row"] > 1
    stage_hours = [scaling[f"gpu_hours_{stem[:2]}"] for stem in STAGES if f"gpu_hours_{stem[:2]}" in scaling]
    assert len(stage_hours) == 5 and sum(stage_hours) == pytest.approx(scaling["gpu_hours_total"])  # 02: no model
    assert scaling["gpu_hours_pessimistic"] > scaling["gpu_hours_total"] > 0

    # The same book in a browser (built once: the pytest budget has no room for a second smoke
    # run). The screenshot's path and the browser's time are printed at the end of the run.
    started = time.perf_counter()
    screenshot = tmp_path / "04_evaluation.png"
    problems, views = browser.check_book(html, screenshot={RESULTS_PAGE: screenshot})
    record_property("browser_seconds", round(time.perf_counter() - started, 1))
    tallest = max(views.values(), key=lambda view: view.height)
    record_property("tallest_page", f"{tallest.name}, {tallest.height} px")
    if os.environ.get("INBOL_SCREENSHOTS"):  # a folder that outlives pytest's tmp folders
        keep = Path(os.environ["INBOL_SCREENSHOTS"]).resolve()
        keep.mkdir(parents=True, exist_ok=True)
        screenshot = Path(shutil.copy(screenshot, keep / screenshot.name))
    record_property("screenshot", str(screenshot))
    assert not problems, "the smoke book in Chromium:\n" + browser.report(problems)
    assert set(views) >= {"book/intro.html", RESULTS_PAGE, RUNNING_PAGE} and screenshot.stat().st_size > 0
    # The reference page on running the study (its own links are checked with every page's
    # above): its heading rendered, and the navigation of the pages around it links it.
    assert "<h1>Running the study<" in (html / RUNNING_PAGE).read_text(), "its title is not its heading"
    assert "make book" in views[RUNNING_PAGE].text
    unlinked = [page for page in ("book/intro.html", RESULTS_PAGE, "book/glossary.html")
                if not any(link.split("#")[0].endswith("/" + RUNNING_PAGE) for link in views[page].links)]
    assert not unlinked, f"no link to {RUNNING_PAGE} in the navigation of {unlinked}"
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    links = views[RESULTS_PAGE].links
    assert repository in links and any(link.startswith(repository + "/issues/new") for link in links), \
        "the repository and issue buttons should link to _config.yml's repository url"

    # Jupyter starts a kernel in notebooks/: a chapter opened there reads the same run, its
    # relative `artifacts` being read from the project's root as the runner's is.
    stage = next(s for s in pipeline.load_params(params)["stages"] if s["stem"] == "06_scaling_up")
    papermill.execute_notebook(str(stage["notebook"]), str(tmp_path / "from_notebooks.ipynb"), kernel_name="python3",
                               parameters={**stage["parameters"], "artifacts": os.path.relpath(artifacts, ROOT)},
                               cwd=str(ROOT / "notebooks"), progress_bar=False)
    assert glued_values(tmp_path / "from_notebooks.ipynb") == scaling


@pytest.mark.slow
def test_smoke_pipeline_through_easy_vqa(tmp_path):
    """Notebooks 00 and 01 through the easy-VQA adapter: base models trained on its images, and
    their probe. These are the stages with source-specific code (the adapter, the vision labels,
    the figures that say "not known on this source"). From 02 on, the stages read what 01 and
    the world folder hold, in the schema every source shares; what differs on a real source (the
    "unknown" intrinsic truth in training data and metrics) is tested in test_sources.py, and
    params/easy_vqa.yaml runs all five stages (too long for this suite's budget)."""
    params = tmp_path / "easy_vqa.yaml"
    params.write_text(f"""
artifacts: {tmp_path / 'artifacts'}
common: {{world_seed: 0, seeds: [0], workers: 1, tau: 0.5}}
stages:
  - notebook: notebooks/00_world_and_base_model.ipynb
    parameters: {{source: easy_vqa, n_base_perception: 200, n_probe: 60, n_validation: 30, n_test: 30,
                  n_ood: 20, vision_width: 32, text_width: 32, text_layers: 1, vision_steps: 5,
                  base_steps: 8, probe_every: 4}}
  - notebook: notebooks/01_boundary_definition.ipynb
    parameters: {{n_samples: 2, n_values: [1, 2]}}
""")
    executed = tmp_path / "executed"
    records = run_pipeline(params, executed, force=True)
    assert [r["status"] for r in records] == ["ran"] * 2
    for path in executed.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], f"{path.name} has error output"
        assert "not known on this source (easy_vqa)" in str(outputs), path.name
    artifacts = tmp_path / "artifacts"
    assert json.loads((protocol.world_dir(artifacts, 0) / "source.json").read_text())["source"] == "easy_vqa"
    assert pd.read_csv(artifacts / "results" / "base_models.csv")["meets_targets"].all()  # nothing to check here
    probe = pd.read_parquet(artifacts / "seed0" / "boundary.parquet")
    assert len(probe) == 60 and set(probe["region_truth"]) == {"unknown", "beyond-extrinsic"}
    unanswerable = probe["region_truth"] == "beyond-extrinsic"
    assert (probe.loc[unanswerable, "likelihood_conf"] == 0).all()  # nothing in the image to know
    assert probe.loc[~unanswerable, "likelihood_conf"].between(0, 1).all()
    assert probe.loc[~unanswerable, "answers"].map(len).eq(1).all()
