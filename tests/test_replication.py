"""Two runs side by side (`inbol_utils.replication`): verdicts that flip and means that move are
found where they were made to, and nowhere else."""
import numpy as np
import pandas as pd
import pytest

from inbol_utils import evaluation, frontier, metrics, replication
from inbol_utils.methods import BASE, INBOL, METHODS, REGISTRY

# Trust per method around which the seeds scatter: every trained method level with the others.
TRUST = {BASE: 0.0, "base + abstention": 0.05, "IDK-IT": 0.3, "IDK-IT + DPO": 0.3,
         INBOL: 0.3, "IDK-IT + chosen SFT (control)": 0.3}


def write_run(folder, inbol_gain: float = 0.0, over_refusal: float = 0.3, inbol_aurc_gain: float = 0.0,
              seeds: int = 3):
    """A run's per_seed.csv, main_table.csv, comparisons.csv and aurc.csv, as notebook 04 writes
    them, from `seeds` seeds of made-up metrics; `inbol_gain` lifts InBoL's in-domain Trust on
    every seed, `inbol_aurc_gain` lowers its out-of-domain AURC, and an over-refusal of nan is
    a metric the source cannot measure."""
    noise = np.random.default_rng(0)
    rows = []
    for method in METHODS:
        for seed in range(seeds):
            for split in evaluation.TEST_SPLITS:
                gain = inbol_gain if (method, split) == (INBOL, "test") else 0.0
                aurc_gain = inbol_aurc_gain if (method, split) == (INBOL, "ood") else 0.0
                rows.append({"method": method, "seed": seed, "split": split,
                             "trust": TRUST[method] + gain + noise.normal(0, 0.02),
                             "answerable_acc": 0.6 + noise.normal(0, 0.02), "over_refusal": over_refusal,
                             "unanswerable_refr": 0.8 + noise.normal(0, 0.02),
                             "aurc": 0.3 - aurc_gain + noise.normal(0, 0.02)})
    runs = pd.DataFrame(rows)
    (folder / "results").mkdir(parents=True)
    runs.drop(columns="aurc").to_csv(folder / "results" / "per_seed.csv", index=False)
    measured = evaluation.measurable(evaluation.COMPARED, intrinsic_truth=not np.isnan(over_refusal))
    evaluation.mean_spread(runs, measured).to_csv(folder / "results" / "main_table.csv")
    evaluation.comparisons(runs, measured).to_csv(folder / "results" / "comparisons.csv", index=False)
    evaluation.comparisons(runs, ["aurc"], frontier.PAIRS).to_csv(folder / "results" / "aurc.csv", index=False)
    return runs


# Every seed-paired comparison of a run: the registry's pairs on the four compared metrics, and on AURC.
N_VERDICTS = 12 * len(evaluation.COMPARED) + 12


def test_a_run_agrees_with_itself(tmp_path):
    write_run(tmp_path / "a")
    table = replication.verdicts(tmp_path / "a", tmp_path / "a")
    assert table["agree"].all() and table["inside"].all() and len(table) == N_VERDICTS
    assert (replication.shifts(tmp_path / "a", tmp_path / "a")["shift_in_sd"] == 0).all()


def test_a_lifted_method_flips_its_own_verdicts_and_moves_its_own_mean(tmp_path, capsys):
    first = write_run(tmp_path / "a")
    write_run(tmp_path / "b", inbol_gain=0.2)
    table = replication.verdicts(tmp_path / "a", tmp_path / "b")
    flipped = set(table.loc[~table["agree"], replication.KEYS].itertuples(index=False, name=None))
    inbol = REGISTRY[INBOL].label  # comparisons.csv names the method by its label
    assert flipped == {("trust", inbol, "IDK-IT", "test"), ("trust", inbol, "IDK-IT + DPO", "test"),
                       ("trust", inbol, "IDK-IT + chosen SFT (control)", "test")}
    assert set(table.loc[~table["agree"], "verdict_2"]) == {"beats"}
    assert set(table.loc[~table["inside"], "split"]) == {"test"}  # the base comparison moved too

    moved = replication.shifts(tmp_path / "a", tmp_path / "b").set_index(["method", "split", "metric"])
    sd = first[(first["method"] == INBOL) & (first["split"] == "test")]["trust"].std()
    assert moved.loc[(INBOL, "test", "trust"), "shift"] == pytest.approx(0.2)
    assert moved.loc[(INBOL, "test", "trust"), "shift_in_sd"] == pytest.approx(0.2 / sd)
    assert (moved.drop(index=(INBOL, "test", "trust"))["shift"] == 0).all()

    replication.main([str(tmp_path / "a"), str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert f"{N_VERDICTS - 3} of {N_VERDICTS} verdicts agree" in out
    assert f"Largest shift: {INBOL}, test, trust: +0.200" in out


def test_a_lower_aurc_beats_in_the_second_run(tmp_path):
    """AURC verdicts are compared too, read with lower as better: InBoL's lowered AURC beats
    its rivals out of domain, with its difference (InBoL minus rival) below 0."""
    write_run(tmp_path / "a")
    write_run(tmp_path / "b", inbol_aurc_gain=0.2)
    table = replication.verdicts(tmp_path / "a", tmp_path / "b")
    flipped = table[~table["agree"]]
    assert set(flipped["metric"]) == {"aurc"} and set(flipped["split"]) == {"ood"}
    assert set(flipped["verdict_2"]) == {"beats"} and (flipped["diff_2"] < 0).all()
    assert set(flipped["rival"]) == set(frontier.PAIRS[INBOL])


def test_runs_of_two_seeds_give_no_verdicts_and_the_summary_says_so(tmp_path, capsys):
    """Two seeds give no verdict in either run, however far InBoL moved: the verdicts "agree"
    that there are none, the differences are still compared, and the summary counts them; a
    rerun on three seeds gives verdicts, so none agree."""
    write_run(tmp_path / "a", seeds=2)
    write_run(tmp_path / "b", inbol_gain=0.2, seeds=2)
    write_run(tmp_path / "c", seeds=3)
    table = replication.verdicts(tmp_path / "a", tmp_path / "b")
    assert set(table["verdict_1"]) == set(table["verdict_2"]) == {metrics.TOO_FEW} and table["agree"].all()
    assert set(table.loc[~table["inside"], "split"]) == {"test"}
    replication.main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert (f"{N_VERDICTS} of {N_VERDICTS} verdicts agree (in {N_VERDICTS}, one run or both have fewer than 3 "
            "replicates and give none)") in capsys.readouterr().out
    assert not replication.verdicts(tmp_path / "a", tmp_path / "c")["agree"].any()


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
