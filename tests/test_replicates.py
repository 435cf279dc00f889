"""Per-replicate differences and the firm verdicts one replicate contradicts, by hand."""
import pandas as pd

from inbol_utils import replicates
from inbol_utils.book import readings
from inbol_utils.methods import IDKIT, INBOL, REGISTRY


def runs(inbol: list[float], idkit: list[float]) -> pd.DataFrame:
    rows = [{"method": m, "seed": s, "split": "test", "trust": v}
            for m, values in ((INBOL, inbol), (IDKIT, idkit)) for s, v in enumerate(values)]
    return pd.DataFrame(rows)


def comparison(diff: float, verdict: str) -> pd.DataFrame:
    return pd.DataFrame([{"metric": "trust", "method": REGISTRY[INBOL].label, "rival": IDKIT, "split": "test",
                          "diff": diff, "low": 0.0, "high": 0.0, "verdict": verdict, "n": 3}])


def test_each_seeds_difference_is_the_method_minus_the_rival_on_that_seed():
    diffs = replicates.differences(runs([0.5, 0.4, 0.3], [0.1, 0.2, 0.4]), comparison(0.1667, "beats"))
    assert diffs["seed_diff"].round(6).tolist() == [0.4, 0.2, -0.1]


def test_a_firm_verdict_one_replicate_contradicts_is_named_with_its_world():
    diffs = replicates.differences(runs([0.5, 0.4, 0.3], [0.1, 0.2, 0.4]), comparison(0.1667, "beats"))
    against = replicates.contradicted(diffs)
    assert against["seeds_against"].tolist() == [[2]]
    text = readings.replicate_reading(diffs, worlds={0: 0, 1: 1, 2: 2})
    assert text.startswith("1 of the 1 firm verdicts do not hold on every replicate, so they rest on the others' "
                           "worlds: InBoL beats IDK-IT on Trust (test), against it on seed 2 (world 2)")
    shared = readings.replicate_reading(diffs, worlds={0: 0, 1: 0, 2: 0})  # a fixed world_seed, a real source
    assert "rest on the other replicates: " in shared and "worlds" not in shared


def test_a_level_verdict_or_agreeing_replicates_contradict_nothing():
    agreeing = replicates.differences(runs([0.5, 0.4, 0.45], [0.1, 0.2, 0.4]), comparison(0.2167, "beats"))
    assert replicates.contradicted(agreeing).empty
    assert readings.replicate_reading(agreeing, {0: 0, 1: 1, 2: 2}).endswith("so none rests on one replicate's world")
    assert readings.replicate_reading(agreeing, {0: 4, 1: 4, 2: 4}).endswith("so none rests on one replicate")
    level = replicates.differences(runs([0.5, 0.4, 0.3], [0.1, 0.2, 0.4]), comparison(0.1667, "is level with"))
    assert replicates.contradicted(level).empty
    assert readings.replicate_reading(level, {}).startswith("No comparison gives a firm verdict")


def test_trust_by_seed_puts_each_replicates_world_beside_its_trust():
    table = replicates.trust_by_seed(runs([0.5, 0.4, 0.3], [0.1, 0.2, 0.4]).iloc[::-1], worlds={2: 5, 0: 7, 1: 3},
                                     labels={IDKIT: "IDK-IT", INBOL: "InBoL"})
    assert list(table.columns) == ["world", "IDK-IT", "InBoL"]
    assert list(table.index) == ["seed 0", "seed 1", "seed 2"]
    assert table["world"].tolist() == [7, 3, 5] and table["InBoL"].tolist() == [0.5, 0.4, 0.3]
