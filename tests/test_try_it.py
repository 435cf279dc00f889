"""The chapters' "Try it" changes (`inbol_utils.book.try_it`, `inbol_utils.tools.try_it`): each box
offers what the catalogue measures, each change is a valid params copy, and what a run showed is
read from the glued values of two executed books."""
import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook, new_output

from inbol_utils.book import try_it
from inbol_utils.book.prose import glued_values
from inbol_utils.runner.pipeline import load_params
from inbol_utils.tools import try_it as tool

ROOT = Path(__file__).resolve().parents[1]


def try_it_box(chapter: str) -> str:
    notebook = next((ROOT / "notebooks").glob(f"{chapter}_*.ipynb"))
    text = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
    start = text.index("{admonition} Try it")
    return text[start:text.index("{admonition} Reproduce this chapter", start)]


@pytest.mark.parametrize("chapter", ["00", "01", "02", "03", "04", "05", "06"])
def test_every_box_glues_the_cost_and_the_run_of_each_change_it_offers(chapter):
    box = try_it_box(chapter)
    offered = {c.slug for c in try_it.CHANGES if chapter in c.chapters}
    assert offered, chapter
    assert set(re.findall(r"`try_(\w+)_cost`", box)) == offered
    assert set(re.findall(r"`try_(\w+)_seen`", box)) == offered
    assert box.count("What you should see") == 1  # folded, a reading for each change
    assert box.count("{glue:text}`try_it_about`") == 1  # what the readings are set beside, said once
    for change in try_it.CHANGES:  # and the box names every value the change sets
        if chapter in change.chapters:
            for name in change.values:
                assert f"`{name}" in box, (change.slug, name)


@pytest.mark.parametrize("change", try_it.CHANGES, ids=lambda c: c.slug)
def test_each_change_is_a_valid_copy_of_the_default_study(tmp_path, change):
    params = tool.change_params(change)
    assert params["artifacts"] == f"data/try_it/{change.slug}"
    assert {k: params["common"][k] for k in change.values} == change.values
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(params))
    stages = load_params(path)["stages"]  # every value checked against the notebooks' schemas
    for name, value in change.values.items():
        assert any(stage["parameters"].get(name) == value for stage in stages), name


def test_the_one_seed_hub_params_are_written_only_for_the_change_that_names_them(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "hub.yaml").write_text((ROOT / "params" / "hub.yaml").read_text())
    monkeypatch.setattr(tool, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(tool, "FOLDER", tmp_path / "data" / "try_it")
    monkeypatch.setattr(tool, "HUB_ONE_SEED", tmp_path / "data" / "try_it" / "params" / "hub_one_seed.yaml")
    tool.params_file(try_it.BY_SLUG["tau"])
    assert not tool.HUB_ONE_SEED.exists()
    tool.params_file(try_it.BY_SLUG["target_seeds"])
    hub = yaml.safe_load((ROOT / "params" / "hub.yaml").read_text())
    assert yaml.safe_load(tool.HUB_ONE_SEED.read_text()) == {**hub, "common": {**hub["common"], "seeds": [0]}}


def executed(path: Path, values: dict) -> None:
    """An executed notebook as papermill leaves one after myst-nb's `glue`: one output per value."""
    cell = new_code_cell("glue")
    cell.outputs = [new_output("display_data", data={"application/papermill.record/text/plain": repr(v)},
                               metadata={"scrapbook": {"name": k, "mime_prefix": "application/papermill.record/"}})
                    for k, v in values.items()]
    nbformat.write(new_notebook(cells=[cell]), path)


def test_glued_reads_numbers_and_texts_back(tmp_path):
    executed(tmp_path / "04_evaluation.ipynb", {"inbol_test_trust": 0.25, "n_seeds": 3, "reading": "level"})
    assert glued_values(tmp_path / "04_evaluation.ipynb") == {"inbol_test_trust": 0.25, "n_seeds": 3,
                                                              "reading": "level"}
    assert try_it.chapter_values(tmp_path) == {"04": {"inbol_test_trust": 0.25, "n_seeds": 3, "reading": "level"}}


def interval(key: str, diff: float, low: float, high: float, verdict: str) -> dict:
    return {f"diff_{key}": diff, f"low_{key}": low, f"high_{key}": high, f"verdict_{key}": verdict}


def test_seen_sets_each_figure_beside_the_default_runs(tmp_path):
    change = try_it.Change("x", ("04",), {}, (try_it.TRUST, try_it.VS_IDKIT,
                                              ("04", "targets_caveat", "chapter 4's caveat")))
    default = {"04": {"inbol_test_trust": 0.2512, "inbol_test_trust_sd": 0.046,
                      **interval("inbol_vs_idkit_test", 0.036, -0.147, 0.219, "is level with"),
                      "targets_caveat": "every base model met its targets."}}
    changed = {"04": {"inbol_test_trust": 0.3, "inbol_test_trust_sd": 0.01,
                      **interval("inbol_vs_idkit_test", 0.05, 0.01, 0.09, "beats"),
                      "targets_caveat": "every base model met its targets."}}
    assert try_it.seen(change, default, changed, tmp_path) == (
        "InBoL's in-domain Trust (mean ± sd over seeds): 0.251 ± 0.046 in the baseline, 0.300 ± 0.010 with this "
        "change. "
        "InBoL minus IDK-IT, in-domain Trust: +0.036 [-0.147, +0.219] (is level with) in the baseline, "
        "+0.050 [+0.010, +0.090] (beats) with this change. "
        "Chapter 4's caveat: every base model met its targets (as in the baseline).")


def test_seen_reads_an_ablations_rows_from_the_changed_run(tmp_path):
    (tmp_path / "ablations.csv").write_text(
        "ablation,setting,split,trust,answerable_acc,unanswerable_refr\n"
        "tau,0.2,test,0.25,0.6,0.5\ntau,0.2,ood,0.1,0.2,0.3\nanchor,0,test,0.1,0.1,0.1\n")
    change = try_it.Change("x", ("04",), {}, (("04", "ablation:tau", "the τ ablation"),))
    assert try_it.seen(change, {}, {}, tmp_path) == (
        "The τ ablation: 0.2: Trust 0.250, helpfulness 0.600, refusal of unanswerable queries 0.500.")


def test_a_change_not_measured_says_how_to_measure_it(monkeypatch, tmp_path):
    glued = {}
    monkeypatch.setattr(try_it, "RECORD", tmp_path / "missing.json")
    monkeypatch.setattr(try_it, "glue_value", lambda name, value: glued.__setitem__(name, value))
    try_it.glue_chapter("06")
    assert glued["try_mfu_cost"] == glued["try_mfu_seen"] == "not measured yet (make try-it TRY=mfu runs it)"
    assert glued["try_it_about"] == try_it.ABOUT_READINGS
    entry = {"seconds": 73.4, "new_jobs": 0, "machine": "AMD EPYC, 2 cores", "float_kernels": "AVX512",
             "commit": "abc1234", "seen": "The GPU hours: 0.6 in the baseline, 0.3 with this change."}
    (tmp_path / "missing.json").write_text(json.dumps({"mfu": entry}))
    try_it.glue_chapter("06")
    assert glued["try_mfu_cost"] == "73 s on AMD EPYC, 2 cores, AVX512; no new job"
    assert glued["try_mfu_seen"] == "(at abc1234, AMD EPYC, 2 cores, AVX512) " + entry["seen"]


def test_the_record_measures_the_catalogues_changes():
    """A change edited after it was measured must be measured again: the record keeps its values."""
    for slug, entry in try_it.record().items():
        assert entry["values"] == try_it.BY_SLUG[slug].values, f"{slug}: `make try-it TRY={slug}` again"


def test_the_commit_is_marked_changed_by_any_edit_but_the_records_own(tmp_path, monkeypatch):
    """Each measured change rewrites the record, so the record alone must not mark the next one's
    commit "with changes" (every entry after a run's first once was)."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)
    record = tmp_path / "inbol_utils" / "book" / "try_it.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "start")
    monkeypatch.setattr(tool, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(try_it, "RECORD", record)
    record.write_text('{"tau": {}}')
    assert re.fullmatch(r"[0-9a-f]{7,}", tool.commit(record))
    (tmp_path / "code.py").write_text("x = 2\n")
    assert tool.commit(record).endswith(" with changes")
