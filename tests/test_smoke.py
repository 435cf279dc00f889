"""The whole pipeline with tiny parameters, then a strict book build: what `make book` does; then
every page of that book in headless Chromium, offline (tests/browser.py)."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

import browser
from inbol_utils import metrics, protocol
from inbol_utils.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PAGE = "book/executed/04_evaluation.html"


@pytest.mark.slow
def test_smoke_pipeline_builds_the_book(tmp_path, record_property):
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
    assert set(views) >= {"book/intro.html", RESULTS_PAGE} and screenshot.stat().st_size > 0
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    links = views[RESULTS_PAGE].links
    assert repository in links and any(link.startswith(repository + "/issues/new") for link in links), \
        "the repository and issue buttons should link to _config.yml's repository url"
