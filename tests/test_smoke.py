"""The whole pipeline with tiny parameters, then a strict book build: what `make book` does."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from inbol_utils import metrics, protocol
from inbol_utils.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_pipeline_builds_the_book(tmp_path):
    book = tmp_path / "book_root"
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("executed"))
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    params = tmp_path / "smoke.yaml"
    params.write_text((ROOT / "params" / "smoke.yaml").read_text()
                      .replace("artifacts: data/smoke", f"artifacts: {tmp_path / 'artifacts'}"))

    records = run_pipeline(params, book / "book" / "executed", force=True)
    assert [r["status"] for r in records] == ["ran"] * 5

    for executed in (book / "book" / "executed").glob("*.ipynb"):
        notebook = nbformat.read(executed, as_version=4)
        errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{executed.name} has error output"
    results = tmp_path / "artifacts" / "results"
    for name in ("main_table.csv", "main_table.json", "per_seed.csv", "comparisons.csv", "selection.csv",
                 "ablations.csv", "heldout_refusal.csv"):
        assert (results / name).stat().st_size > 0
    selection = pd.read_csv(results / "selection.csv")
    assert selection.groupby("method")["selected"].sum().to_dict() == {m: 1 for m in protocol.METHODS}
    comparisons = pd.read_csv(results / "comparisons.csv")
    assert set(comparisons["verdict"]) <= set(metrics.VERDICTS)
    for seed in (0, 1):  # every seed has its own base model and every trained method
        home = protocol.seed_dir(tmp_path / "artifacts", seed)
        assert all((protocol.model_dir(home, m) / "config.json").is_file() for m in protocol.METHODS)
        assert (home / "base_model" / "config.json").is_file()

    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book),
                            "-W", "-n", "--keep-going"], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = book / "_build" / "html"
    for page in ("00_world_and_base_model", "04_evaluation"):
        text = (html / "book" / "executed" / f"{page}.html").read_text()
        assert "Traceback" not in text


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
    assert json.loads((artifacts / "world" / "source.json").read_text())["source"] == "easy_vqa"
    probe = pd.read_parquet(artifacts / "seed0" / "boundary.parquet")
    assert len(probe) == 60 and set(probe["region_truth"]) == {"unknown", "beyond-extrinsic"}
    unanswerable = probe["region_truth"] == "beyond-extrinsic"
    assert (probe.loc[unanswerable, "likelihood_conf"] == 0).all()  # nothing in the image to know
    assert probe.loc[~unanswerable, "likelihood_conf"].between(0, 1).all()
    assert probe.loc[~unanswerable, "answers"].map(len).eq(1).all()
