"""Two runs side by side (`inbol_utils.replication`): verdicts that flip and means that move are
found where they were made to, and nowhere else."""
import numpy as np
import pandas as pd
import pytest

from inbol_utils import evaluation, replication
from inbol_utils.methods import BASE, INBOL, METHODS, REGISTRY

# Trust per method around which the seeds scatter: every trained method level with the others.
TRUST = {BASE: 0.0, "base + abstention": 0.05, "IDK-IT": 0.3, "IDK-IT + DPO": 0.3,
         INBOL: 0.3, "IDK-IT + chosen SFT (control)": 0.3}


def write_run(folder, inbol_gain: float = 0.0, over_refusal: float = 0.3):
    """A run's per_seed.csv, main_table.csv and comparisons.csv, as notebook 04 writes them,
    from three seeds of made-up metrics; `inbol_gain` lifts InBoL's in-domain Trust on every
    seed, and an over-refusal of nan is a metric the source cannot measure."""
    noise = np.random.default_rng(0)
    rows = []
    for method in METHODS:
        for seed in range(3):
            for split in evaluation.TEST_SPLITS:
                gain = inbol_gain if (method, split) == (INBOL, "test") else 0.0
                rows.append({"method": method, "seed": seed, "split": split,
                             "trust": TRUST[method] + gain + noise.normal(0, 0.02),
                             "answerable_acc": 0.6 + noise.normal(0, 0.02), "over_refusal": over_refusal,
                             "unanswerable_refr": 0.8 + noise.normal(0, 0.02)})
    runs = pd.DataFrame(rows)
    (folder / "results").mkdir(parents=True)
    runs.to_csv(folder / "results" / "per_seed.csv", index=False)
    measured = [m for m in runs.columns[3:] if runs[m].notna().all()]
    evaluation.mean_spread(runs, measured).to_csv(folder / "results" / "main_table.csv")
    evaluation.comparisons(runs).to_csv(folder / "results" / "comparisons.csv", index=False)
    return runs


def test_a_run_agrees_with_itself(tmp_path):
    write_run(tmp_path / "a")
    table = replication.verdicts(tmp_path / "a", tmp_path / "a")
    assert table["agree"].all() and table["inside"].all() and len(table) == 12
    assert (replication.shifts(tmp_path / "a", tmp_path / "a")["shift_in_sd"] == 0).all()


def test_a_lifted_method_flips_its_own_verdicts_and_moves_its_own_mean(tmp_path, capsys):
    first = write_run(tmp_path / "a")
    write_run(tmp_path / "b", inbol_gain=0.2)
    table = replication.verdicts(tmp_path / "a", tmp_path / "b")
    flipped = set(table.loc[~table["agree"], ["method", "rival", "split"]].itertuples(index=False, name=None))
    inbol = REGISTRY[INBOL].label  # comparisons.csv names the method by its label
    assert flipped == {(inbol, "IDK-IT", "test"), (inbol, "IDK-IT + DPO", "test"),
                       (inbol, "IDK-IT + chosen SFT (control)", "test")}
    assert set(table.loc[~table["agree"], "verdict_2"]) == {"beats"}
    assert set(table.loc[~table["inside"], "split"]) == {"test"}  # the base comparison moved too

    moved = replication.shifts(tmp_path / "a", tmp_path / "b").set_index(["method", "split", "metric"])
    sd = first[(first["method"] == INBOL) & (first["split"] == "test")]["trust"].std()
    assert moved.loc[(INBOL, "test", "trust"), "shift"] == pytest.approx(0.2)
    assert moved.loc[(INBOL, "test", "trust"), "shift_in_sd"] == pytest.approx(0.2 / sd)
    assert (moved.drop(index=(INBOL, "test", "trust"))["shift"] == 0).all()

    replication.main([str(tmp_path / "a"), str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert "9 of 12 verdicts agree" in out and f"Largest shift: {INBOL}, test, trust: +0.200" in out


def test_a_run_without_results_is_named(tmp_path):
    write_run(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        replication.verdicts(tmp_path / "a", tmp_path / "missing")


def test_a_metric_the_source_cannot_measure_is_left_out(tmp_path, capsys):
    """A real source has no intrinsic ground truth: its main table has no over-refusal."""
    for run in ("a", "b"):
        write_run(tmp_path / run, over_refusal=float("nan"))
    moved = replication.shifts(tmp_path / "a", tmp_path / "b")
    assert set(moved["metric"]) == set(replication.SHIFT_METRICS) - {"over_refusal"}
    replication.main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert "over_refusal" not in capsys.readouterr().out  # no column of nans
