"""The whole pipeline with tiny parameters, then a strict book build: what `make book` does.
On the way, chapter 4 runs a second time on a copy of the artifacts, in another process under
another Python hash seed, and must write byte-identical results files (the book's promise:
same machine, same bytes). It runs beside the first copy's chapter 4 and the book build, on the
second core that the other pytest worker has usually left by then."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from inbol_utils import environment, metrics, protocol
from inbol_utils.pipeline import partial_notebook, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["00_world_and_base_model", "01_boundary_definition", "02_data_generation", "03_training",
          "04_evaluation"]


def smoke_params(path: Path, artifacts: Path) -> Path:
    path.write_text((ROOT / "params" / "smoke.yaml").read_text()
                    .replace("artifacts: data/smoke", f"artifacts: {artifacts}"))
    return path


@pytest.mark.slow
def test_smoke_pipeline_reproduces_its_results_and_builds_the_book(tmp_path, monkeypatch):
    book = tmp_path / "book_root"
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("executed"))
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, book / name)
    artifacts, twin = tmp_path / "artifacts", tmp_path / "twin"
    params = smoke_params(tmp_path / "smoke.yaml", artifacts)
    chapters = book / "book" / "executed" / "default"  # where _toc.yml reads the default profile

    monkeypatch.setenv("PYTHONHASHSEED", "1")
    records = run_pipeline(params, chapters, force=True, only=STAGES[:4])
    assert [r["status"] for r in records] == ["ran"] * 4 + ["not selected"]
    shutil.copytree(artifacts, twin, copy_function=os.link)  # every write replaces files: links are safe
    rerun = subprocess.Popen(
        [sys.executable, "-m", "inbol_utils.pipeline", str(smoke_params(tmp_path / "twin.yaml", twin)),
         "--only", "04_evaluation", "--executed-dir", str(tmp_path / "twin_chapters")],
        env={**os.environ, "PYTHONHASHSEED": "2"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    records += run_pipeline(params, chapters)
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book),
                            "-W", "-n", "--keep-going"], capture_output=True, text=True)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    assert [r["status"] for r in records[5:]] == ["skipped"] * 4 + ["ran"]
    assert all(r["written_in_place"] == [] for r in records if r["status"] == "ran")

    results = artifacts / "results"
    names = sorted(p.name for p in results.iterdir())
    assert names == sorted(p.name for p in (twin / "results").iterdir())
    for name in names:  # same machine, same code and parameters: the same bytes
        assert (results / name).read_bytes() == (twin / "results" / name).read_bytes(), name
    responses = pd.read_csv(results / "responses.csv").set_index(["method", "split", "id", "seed"])["response"]
    for method in protocol.METHODS:  # another seed is another replicate: other models, other answers
        assert (responses[method].xs(0, level="seed") != responses[method].xs(1, level="seed")).any(), method

    assert sorted(p.name for p in chapters.iterdir()) == [f"{stem}.ipynb" for stem in STAGES]
    assert not list(partial_notebook(artifacts, "x").parent.glob("*.ipynb"))
    for executed in chapters.glob("*.ipynb"):
        notebook = nbformat.read(executed, as_version=4)
        errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{executed.name} has error output"
    for name in ("main_table.csv", "main_table.json", "per_seed.csv", "comparisons.csv", "selection.csv",
                 "ablations.csv", "heldout_refusal.csv", "environment.json"):
        assert (results / name).stat().st_size > 0
    selection = pd.read_csv(results / "selection.csv")
    assert selection.groupby("method")["selected"].sum().to_dict() == {m: 1 for m in protocol.METHODS}
    comparisons = pd.read_csv(results / "comparisons.csv")
    assert set(comparisons["verdict"]) <= set(metrics.VERDICTS)
    for seed in (0, 1):  # every seed has its own base model and every trained method
        home = protocol.seed_dir(artifacts, seed)
        assert all((protocol.model_dir(home, m) / "config.json").is_file() for m in protocol.METHODS)
        assert (home / "base_model" / "config.json").is_file()

    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = book / "_build" / "html"
    for page in ("00_world_and_base_model", "04_evaluation"):
        text = (html / "book" / "executed" / "default" / f"{page}.html").read_text()
        assert "Traceback" not in text
    assert environment.cpu_name() in text  # chapter 4 states the machine its results came from
