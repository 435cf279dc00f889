"""The whole pipeline with tiny parameters, then a strict book build: what `make book` does."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from inbol_utils import costs, metrics, protocol
from inbol_utils.pipeline import run_pipeline
from prose import contradictions

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_pipeline_builds_the_book(tmp_path):
    book = tmp_path / "book_root"
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("executed"))
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    shutil.copytree(ROOT / "_static", book / "_static")
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
    # The GPU-hour estimate's row formulas follow what the notebooks put through the model: within
    # the share of answerable queries (likelihoods count gold answers), prefetched batches and
    # checkpoints chosen before the schedule's end.
    rows = costs.predicted_rows(costs.measured(tmp_path / "artifacts" / "profile.json"), params)
    assert (rows["rows"] / rows["rows_formula"]).dropna().between(0.6, 1.3).all(), rows.to_string()
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
    assert contradictions(book / "book" / "executed", html) == []
