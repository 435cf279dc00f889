"""The default study rerun whole (`inbol_utils.book.reruns`, recorded by `inbol_utils.tools.reruns`):
the readings name exactly the verdicts that moved, and the record is written from two runs."""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from inbol_utils import replication
from inbol_utils.artifacts import write_json
from inbol_utils.book import reruns
from inbol_utils.runner.pipeline import load_params
from inbol_utils.tools import reruns as record_rerun
from test_replication import N_VERDICTS, write_run


def _entry(tmp_path, name: str, inbol_gain: float) -> dict:
    if not (tmp_path / "baseline").exists():
        write_run(tmp_path / "baseline")
    write_run(tmp_path / name, inbol_gain=inbol_gain)
    return reruns.entry(replication.verdicts(tmp_path / "baseline", tmp_path / name), f"the {name} rerun",
                        "abc1234", "a CPU, 2 cores", "AVX2")


def test_a_rerun_that_lifts_inbol_names_its_three_trust_verdicts(tmp_path):
    entry = _entry(tmp_path, "lifted", inbol_gain=0.2)
    assert len(entry["verdicts"]) == N_VERDICTS
    assert reruns.reading(entry) == (
        f"The lifted rerun, at abc1234 on a CPU, 2 cores (AVX2): {N_VERDICTS - 3} of {N_VERDICTS} verdicts came "
        "back (Trust 9 of 12, helpfulness 12 of 12, over-refusal 12 of 12, refusal of unanswerable queries "
        "12 of 12 and area under the frontier 12 of 12); the Trust verdicts that moved: InBoL against IDK-IT "
        "alone, in-domain (is level with, then beats), InBoL against vanilla DPO, in-domain (is level with, then beats) "
        "and InBoL against the control, in-domain (is level with, then beats)")


def test_steady_trust_lists_what_moved_in_any_rerun_and_the_firm_verdicts_that_held(tmp_path):
    same, lifted = _entry(tmp_path, "same", 0.0), _entry(tmp_path, "lifted", 0.2)
    assert reruns.steady_trust({"worlds": same}) == (  # DPO trailing IDK-IT is the made-up seeds' noise
        "12 of the default study's 12 Trust verdicts came back with other worlds. The firm ones among those that "
        "came back: in-domain, InBoL beats the base model; out of domain, vanilla DPO trails IDK-IT alone and InBoL beats "
        "the base model")
    assert reruns.steady_trust({"worlds": same, "kernels": lifted}) == (
        "9 of the default study's 12 Trust verdicts came back with other worlds and other float rounding, all but "
        "these: "
        "in-domain, InBoL against IDK-IT alone, InBoL against vanilla DPO and InBoL against the control. The "
        "firm ones among those that came back: in-domain, InBoL beats the base model; out of domain, vanilla "
        "DPO trails IDK-IT alone and InBoL beats the base model")
    assert reruns.steady_trust({}).startswith("no rerun is recorded yet")


def test_steady_trust_counts_this_runs_own_verdicts_and_only_the_comparisons_the_reruns_made(tmp_path):
    """A verdict the reruns share but this book's run does not give has moved: the introduction
    once called out-of-domain InBoL "beats the base model" beside this run's "is level with"."""
    same = _entry(tmp_path, "same", 0.0)
    this_run = pd.read_csv(tmp_path / "baseline" / "results" / "comparisons.csv")
    ood_base = (this_run["metric"] == "trust") & (this_run["split"] == "ood") & (this_run["rival"] == "base")
    this_run.loc[ood_base, "verdict"] = "is level with"
    extra = {"metric": "trust", "method": "InBoL", "rival": "a method no rerun had", "split": "test",
             "verdict": "beats"}
    assert reruns.steady_trust({"worlds": same}, pd.concat([this_run, pd.DataFrame([extra])])) == (
        "11 of the 12 Trust verdicts came back in this run and with other worlds, all but these: out of domain, "
        "InBoL against the base model. The firm ones among those that came back: in-domain, InBoL beats the base "
        "model; out of domain, vanilla DPO trails IDK-IT alone")


def test_a_rerun_not_recorded_says_how_to_record_it(tmp_path, monkeypatch):
    glued = {}
    monkeypatch.setattr(reruns, "RECORD", tmp_path / "reruns.json")
    monkeypatch.setattr(reruns, "glue_value", lambda name, value: glued.__setitem__(name, value))
    write_json(reruns.RECORD, {"worlds": _entry(tmp_path, "same", 0.0)})
    reruns.glue_chapter()
    assert glued["rerun_worlds_reading"].startswith("The same rerun, at abc1234")
    assert glued["rerun_kernels_reading"] == ("Torch's generic float kernels, as another CPU would round: not "
                                              "recorded yet (make reruns RERUN=kernels runs and records it)")


def test_a_rerun_is_the_default_study_with_its_change_and_only_the_compared_verdicts(tmp_path):
    default = yaml.safe_load(record_rerun.DEFAULT.read_text())
    worlds = record_rerun.rerun_params("worlds")
    assert worlds["artifacts"] == "data/rerun/worlds"
    assert worlds["common"] == {**default["common"], "seeds": [3, 4, 5]}
    reduced = [stage for stage in worlds["stages"] if Path(stage["notebook"]).stem in record_rerun.LEFT_OUT]
    assert [stage["parameters"] for stage in reduced] == list(record_rerun.LEFT_OUT.values())
    assert record_rerun.LEFT_OUT["05_label_noise"] == {"noise_n_values": []}  # no label set trains
    assert [s for s in worlds["stages"] if s not in reduced] == [s for s in default["stages"]
                                                                if Path(s["notebook"]).stem not in record_rerun.LEFT_OUT]
    assert record_rerun.rerun_params("kernels")["common"] == default["common"]
    for slug in reruns.RERUNS:
        path = tmp_path / f"{slug}.yaml"
        path.write_text(yaml.safe_dump(record_rerun.rerun_params(slug)))
        load_params(path)  # every value checked against the notebooks' schemas


def test_the_command_records_a_rerun_already_run_with_where_its_chapter_4_ran(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reruns, "RECORD", tmp_path / "reruns.json")
    monkeypatch.setattr(record_rerun, "FOLDER", tmp_path / "rerun")
    monkeypatch.setattr(record_rerun, "BASELINE", tmp_path / "default")
    with pytest.raises(SystemExit, match="run `make book` first"):
        record_rerun.main(["worlds"])
    write_run(tmp_path / "default")
    write_run(tmp_path / "rerun" / "worlds", inbol_gain=0.2)
    write_json(tmp_path / "rerun" / "worlds" / "results" / "environment.json",
               {"stages": {"04_evaluation": {"cpu": "A CPU", "cores": 2, "float_kernels": "DEFAULT"}}})
    write_json(tmp_path / "rerun" / "worlds" / "measured.json", {"seconds": 1.0, "new_jobs": 0, "commit": "abc1234"})
    with pytest.raises(SystemExit, match="unknown rerun"):
        record_rerun.main(["planets"])
    record_rerun.main(["worlds"])
    entry = json.loads(reruns.RECORD.read_text())["worlds"]
    assert (entry["commit"], entry["machine"], entry["float_kernels"]) == ("abc1234", "A CPU, 2 cores", "DEFAULT")
    assert entry["about"] == reruns.RERUNS["worlds"].about
    assert capsys.readouterr().out.splitlines()[-1] == "worlds: " + reruns.reading(entry)


def test_the_recorded_reruns_are_ones_chapter_4_offers():
    for slug, entry in reruns.record().items():
        assert slug in reruns.RERUNS and entry["about"] == reruns.RERUNS[slug].about
