"""The metrics' formulas, by hand and by the properties that define them."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbol_utils.answers import RESPONSE_TYPES
from inbol_utils.metrics import (
    MIN_REPLICATES,
    REGIONS,
    TOO_FEW,
    VERDICTS,
    auroc,
    knowledge_quadrants,
    paired_comparison,
    region_response_matrix,
    response_rates,
    truthful_rate,
    t_quantile,
    trust_score,
    verdict,
)

TYPES_6_3_1 = ["correct"] * 6 + ["refusal"] * 3 + ["wrong"]


def test_response_rates_by_hand():
    rates = response_rates(TYPES_6_3_1)
    assert rates["acc"] == pytest.approx(0.6)
    assert rates["refr"] == pytest.approx(0.3)
    assert rates["err"] == pytest.approx(0.1)
    assert rates["n"] == 10


def test_response_rates_empty_and_unknown():
    assert math.isnan(response_rates([])["acc"]) and response_rates([])["n"] == 0
    with pytest.raises(ValueError):
        response_rates(["correct", "maybe"])


@given(st.lists(st.sampled_from(RESPONSE_TYPES), min_size=1))
def test_rates_sum_to_one(types):
    rates = response_rates(types)
    assert rates["acc"] + rates["refr"] + rates["err"] == pytest.approx(1.0)
    assert rates["err"] == pytest.approx(1 - rates["acc"] - rates["refr"])


@pytest.fixture(scope="module")
def trust(implementation):
    """trust_score, or an answer to the exercise that asks for it (inbol_utils.tools.exercises)."""
    return implementation(trust_score)


@pytest.mark.exercise("trust_score")
def test_trust_by_hand(trust):
    assert trust(0.6, 0.3) == pytest.approx(0.5)
    assert trust(0.6, 0.3, c=2) == pytest.approx(0.4)
    assert trust(0.6, 0.3, c=0) == pytest.approx(0.6)
    assert trust(0.0, 1.0, c=4) == pytest.approx(0.0)  # refusing everything scores 0
    assert trust(0.0, 0.0, c=1) == pytest.approx(-1.0)
    np.testing.assert_allclose(trust(np.array([0.6, 0.2]), np.array([0.3, 0.8])), [0.5, 0.2])


@pytest.mark.exercise("trust_score")
@given(
    st.lists(st.sampled_from(RESPONSE_TYPES), min_size=1),
    st.floats(0, 10),
    st.floats(0, 10),
)
def test_trust_is_non_increasing_in_c(trust, types, c1, c2):
    rates = response_rates(types)
    low, high = sorted([c1, c2])
    acc, refr = rates["acc"], rates["refr"]
    assert trust(acc, refr, high) <= trust(acc, refr, low) + 1e-12


def test_hybrids_are_errors_not_refusals():
    out = response_rates(["correct", "refusal", "hybrid", "wrong"])
    assert (out["acc"], out["refr"], out["hybrid"]) == (0.25, 0.25, 0.25)
    assert out["err"] == pytest.approx(0.5)


@pytest.mark.parametrize("a, b, verdict", [
    ([0.30, 0.32, 0.31], [0.20, 0.21, 0.22], "beats"),     # consistent gain: interval above 0
    ([0.20, 0.21, 0.22], [0.30, 0.32, 0.31], "trails"),
    ([0.30, 0.10, 0.25], [0.20, 0.25, 0.20], "is level with"),  # mixed signs: interval holds 0
    ([0.5], [0.1], TOO_FEW),                              # one seed: no interval, no verdict
])
def test_paired_comparison_verdicts(a, b, verdict):
    assert paired_comparison(a, b)["verdict"] == verdict


@pytest.mark.parametrize("a, b, verdict", [
    ([0.10, 0.11, 0.12], [0.20, 0.22, 0.21], "beats"),     # lower (less over-refusal): the method serves better
    ([0.20, 0.22, 0.21], [0.10, 0.11, 0.12], "trails"),
    ([0.30, 0.10, 0.25], [0.20, 0.25, 0.20], "is level with"),
])
def test_where_lower_is_better_the_verdict_turns_and_the_difference_keeps_its_sign(a, b, verdict):
    out = paired_comparison(a, b, lower_is_better=True)
    assert out["verdict"] == verdict
    assert out == {**paired_comparison(a, b), "verdict": verdict}  # same difference and interval: a - b
    assert out["diff"] == pytest.approx(np.mean(a) - np.mean(b))


@given(st.floats(-1, 1), st.floats(0, 1))
def test_a_verdict_read_the_other_way_is_the_mirror_image(low, width):
    """An interval [low, high] with lower better reads as [-high, -low] with higher better."""
    high = low + width
    n = MIN_REPLICATES
    assert verdict(low, high, n, lower_is_better=True) == verdict(-high, -low, n)
    assert {verdict(low, high, n), verdict(low, high, n, lower_is_better=True)} in (
        {"beats", "trails"}, {"is level with"})


@given(st.floats(-1, 1), st.floats(0, 1), st.integers(0, MIN_REPLICATES - 1), st.booleans())
def test_fewer_than_three_replicates_give_no_verdict_whatever_the_interval(low, width, n, lower_is_better):
    assert verdict(low, low + width, n, lower_is_better) == TOO_FEW


@pytest.mark.parametrize("lower_is_better, three_say", [(False, "beats"), (True, "trails")])
def test_two_seeds_that_agree_give_no_verdict_and_three_do(lower_is_better, three_say):
    """Two identical large differences give a zero-width interval far from 0: still no verdict,
    though the difference and interval are reported. A third seed gives a real one, read the
    way `lower_is_better` says."""
    two = paired_comparison([0.9, 0.9], [0.1, 0.1], lower_is_better=lower_is_better)
    assert two["verdict"] == TOO_FEW and two["n"] == 2
    assert two["diff"] == pytest.approx(0.8) and two["low"] == pytest.approx(0.8) and two["high"] == pytest.approx(0.8)
    three = paired_comparison([0.9, 0.9, 0.9], [0.1, 0.1, 0.1], lower_is_better=lower_is_better)
    assert three["verdict"] == three_say and three["n"] == 3
    assert TOO_FEW not in VERDICTS  # VERDICTS stays the three real verdicts


def test_paired_comparison_interval_by_hand():
    """Differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027 -> 2 +- 4.3027 / sqrt(3)."""
    out = paired_comparison([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    half = t_quantile(3) / math.sqrt(3)
    assert out["diff"] == pytest.approx(2.0) and out["n"] == 3
    assert out["low"] == pytest.approx(2 - half) and out["high"] == pytest.approx(2 + half)
    assert out["verdict"] == "is level with"  # 2 - 2.484 < 0
    with pytest.raises(ValueError, match="paired"):
        paired_comparison([0.1, float("nan")], [0.1, 0.2])


def test_region_response_matrix_by_hand(ten_queries):
    matrix = region_response_matrix(ten_queries)
    assert list(matrix.index) == list(REGIONS)
    assert list(matrix.columns) == [*RESPONSE_TYPES, "n"]
    expected = np.array([  # correct, refusal, hybrid, wrong
        [3 / 4, 1 / 4, 0.0, 0.0],
        [1 / 3, 1 / 3, 0.0, 1 / 3],
        [0.0, 2 / 3, 0.0, 1 / 3],
    ])
    np.testing.assert_allclose(matrix[list(RESPONSE_TYPES)].to_numpy(), expected)
    assert list(matrix["n"]) == [4, 3, 3]


def test_region_response_matrix_missing_region_is_nan_row(ten_queries):
    df = ten_queries
    matrix = region_response_matrix(df[df["region_truth"] == "inside"])
    assert matrix.shape == (3, 5)
    assert matrix.loc["beyond-extrinsic", list(RESPONSE_TYPES)].isna().all()
    assert matrix.loc["beyond-extrinsic", "n"] == 0
    assert matrix.loc["inside", "correct"] == pytest.approx(0.75)


def test_region_response_matrix_rejects_unknown_region(ten_queries):
    df = ten_queries
    df.loc[0, "region_truth"] = "outside"
    with pytest.raises(ValueError):
        region_response_matrix(df)


def test_auroc_small_example():
    # Positive scores 0.8, 0.4; negative 0.6, 0.2: 3 of 4 pairs ranked right.
    assert auroc([0.8, 0.4, 0.6, 0.2], [True, True, False, False]) == pytest.approx(0.75)
    assert auroc([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)
    assert auroc([0.1, 0.2], [1, 0]) == pytest.approx(0.0)


def test_auroc_one_class_is_nan():
    assert math.isnan(auroc([0.1, 0.9], [True, True]))
    assert math.isnan(auroc([0.1, 0.9], [0, 0]))
    assert math.isnan(auroc([], []))


def _quadrant_frame() -> pd.DataFrame:
    rows = [
        (True, "correct"), (True, "correct"), (True, "correct"),  # Ik-Ik
        (True, "refusal"),  # Idk-Ik: over-conservative
        (True, "wrong"),  # Idk-Idk: wrong on a known question
        (False, "refusal"), (False, "refusal"),  # Ik-Idk: right refusals
        (False, "wrong"), (False, "wrong"),  # Idk-Idk
        (False, "correct"),  # Ik-Ik: a lucky guess
    ]
    return pd.DataFrame(rows, columns=["known", "response_type"])


def test_knowledge_quadrants_by_hand():
    q = knowledge_quadrants(_quadrant_frame())
    assert q == pytest.approx({"Ik-Ik": 0.4, "Ik-Idk": 0.2, "Idk-Ik": 0.1, "Idk-Idk": 0.3})


def test_truthful_rate_by_hand():
    assert truthful_rate(_quadrant_frame()) == pytest.approx(0.6)


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(RESPONSE_TYPES)), min_size=1))
def test_quadrants_sum_to_one(rows):
    df = pd.DataFrame(rows, columns=["known", "response_type"])
    assert sum(knowledge_quadrants(df).values()) == pytest.approx(1.0)


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(RESPONSE_TYPES)), min_size=1), st.data())
def test_truthful_rate_rewards_a_refusal_only_of_what_was_unknown(rows, data):
    """Turn one query's response from a wrong answer into a refusal: the truthful rate gains one
    query's share if the query was unknown and nothing if it was known (over-conservative);
    a right answer instead of a wrong one gains that share either way."""
    df = pd.DataFrame(rows, columns=["known", "response_type"])
    i = data.draw(st.integers(0, len(df) - 1))

    def rate_with(response_type: str) -> float:
        return truthful_rate(df.assign(response_type=df["response_type"].where(df.index != i, response_type)))

    share = 1 / len(df)
    assert rate_with("refusal") - rate_with("wrong") == pytest.approx(0.0 if df.loc[i, "known"] else share)
    assert rate_with("correct") - rate_with("wrong") == pytest.approx(share)
    assert rate_with("hybrid") == pytest.approx(rate_with("wrong"))  # an answer, then a refusal: an error


def test_t_quantile_matches_the_interval():
    assert t_quantile(3) == pytest.approx(4.302652729911275)
    assert t_quantile(3, level=0.9) < t_quantile(3) and t_quantile(30) < t_quantile(3)
    assert t_quantile(1) == math.inf
