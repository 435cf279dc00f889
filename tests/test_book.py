"""The phrases and tables the introduction glues from chapter 4: chosen from the numbers."""
import math

import numpy as np
import pandas as pd
import pytest

from inbol_utils.book import prose
from inbol_utils import evaluation, metrics
from inbol_utils.methods import BASE, IDKIT, INBOL, METHODS, REGISTRY
from prose import verdict_contradictions


def _comparisons(verdicts: dict[str, tuple[float, float, float, str]], metric: str = "trust",
                 split: str = "test", n: int = 3) -> pd.DataFrame:
    return pd.DataFrame([{"metric": metric, "method": "InBoL", "split": split, "rival": rival, "diff": d, "low": lo,
                          "high": hi, "verdict": v, "n": n} for rival, (d, lo, hi, v) in verdicts.items()])


def test_headline_verdict_follows_the_numbers():
    comparisons = _comparisons({"base": (0.3, 0.2, 0.4, "beats"), "IDK-IT": (-0.01, -0.05, 0.03, "is level with")})
    sentence = prose.headline_verdict(comparisons, "InBoL", {"base": "the base model", "IDK-IT": "IDK-IT alone"},
                                     "test")
    assert sentence == ("InBoL beats the base model (+0.300, 95% interval +0.200 to +0.400) and is level with "
                        "IDK-IT alone (-0.010, 95% interval -0.050 to +0.030)")
    flipped = _comparisons({"base": (-0.3, -0.4, -0.2, "trails")})
    assert prose.headline_verdict(flipped, "InBoL", {"base": "the base model"}, "test").startswith(
        "InBoL trails the base model (-0.300")
    # the headline is Trust's, whatever the other metrics' verdicts
    with_others = pd.concat([comparisons, _comparisons({"base": (-0.3, -0.4, -0.2, "trails")}, "answerable_acc")])
    assert prose.headline_verdict(with_others, "InBoL", {"base": "the base model"}, "test").startswith(
        "InBoL beats the base model (+0.300")


def _four_metrics(split: str = "test") -> pd.DataFrame:
    """InBoL against IDK-IT on the four compared metrics, as `evaluation.comparisons` gives them."""
    return pd.concat([_comparisons({"IDK-IT": numbers}, metric, split) for metric, numbers in {
        "trust": (0.004, -0.01, 0.018, "is level with"), "answerable_acc": (0.05, 0.024, 0.076, "beats"),
        "over_refusal": (-0.03, -0.05, -0.01, "beats"), "unanswerable_refr": (-0.094, -0.17, -0.019, "trails"),
    }.items()], ignore_index=True)


def test_what_a_method_changes_is_said_in_the_users_words():
    sentence = prose.change_phrase(_four_metrics(), "InBoL", "IDK-IT", "IDK-IT alone", "test")
    assert sentence == (
        "against IDK-IT alone, InBoL gets more of the answerable questions right (+0.050, 95% interval +0.024 to "
        "+0.076), refuses fewer of the questions it should answer (-0.030, 95% interval -0.050 to -0.010) and "
        "refuses fewer of the unanswerable questions (-0.094, 95% interval -0.170 to -0.019); it is level on Trust")
    level = _four_metrics().assign(verdict="is level with")
    assert prose.change_phrase(level, "InBoL", "IDK-IT", "IDK-IT alone", "test") == (
        "against IDK-IT alone, InBoL is level on every measure: Trust, helpfulness, over-refusal and refusal of "
        "unanswerable questions")
    measured = _four_metrics()[lambda f: f["metric"] != "over_refusal"]  # a real source: no over-refusal
    assert "should answer" not in prose.change_phrase(measured, "InBoL", "IDK-IT", "IDK-IT alone", "test")


def test_comparison_table_has_a_row_per_split_and_pair_and_a_column_per_metric():
    both = pd.concat([_four_metrics("test"), _four_metrics("ood")])
    table = prose.comparison_table(both, {"IDK-IT": "IDK-IT"})
    assert list(table.columns) == ["Trust", "helpful", "over-refusal", "RefR unans."]
    assert list(table.index) == [("test", "InBoL vs IDK-IT"), ("ood", "InBoL vs IDK-IT")]
    assert table.loc[("ood", "InBoL vs IDK-IT"), "over-refusal"] == "beats -0.030"
    assert table.loc[("test", "InBoL vs IDK-IT"), "Trust"] == "level +0.004"
    aurc = prose.comparison_table(_comparisons({"IDK-IT": (-0.02, -0.03, -0.01, "beats")}, "aurc"), {"IDK-IT": "IDK-IT"},
                                 intervals=True)
    assert aurc.loc[("test", "InBoL vs IDK-IT"), "AURC"] == "beats -0.020 (-0.030 to -0.010)"


def _frontier(aurc: tuple, coverage: tuple) -> pd.DataFrame:
    return pd.concat([_comparisons({"IDK-IT": aurc}, "aurc"), _comparisons({"IDK-IT": coverage}, "coverage")])


@pytest.mark.parametrize("aurc, coverage, start", [
    ((-0.02, -0.03, -0.01, "beats"), (0.1, 0.05, 0.15, "beats"), "InBoL's frontier lies above IDK-IT's (AURC -0.020"),
    ((0.02, 0.01, 0.03, "trails"), (0.0, -0.1, 0.1, "is level with"), "InBoL's frontier lies below IDK-IT's"),
    ((0.0, -0.01, 0.01, "is level with"), (-0.1, -0.15, -0.05, "trails"),
     "InBoL and IDK-IT sit at different points of one frontier: their AURC is level (+0.000, 95% interval -0.010 "
     "to +0.010) while InBoL answers fewer of the questions (-0.100"),
    ((0.0, -0.01, 0.01, "is level with"), (0.0, -0.1, 0.1, "is level with"),
     "InBoL and IDK-IT share one frontier and one place on it"),
])
def test_frontier_phrase_reads_aurc_then_the_operating_point(aurc, coverage, start):
    assert prose.frontier_phrase(_frontier(aurc, coverage), "InBoL", "IDK-IT", "IDK-IT", "test").startswith(start)


def _two_seed_runs() -> pd.DataFrame:
    """Every method on two seeds that agree closely, InBoL well ahead of IDK-IT on every metric:
    a narrow interval far from 0, which two seeds must not make a verdict of."""
    return pd.DataFrame([{"method": m, "seed": s, "split": split, "trust": 0.1 * (m == INBOL) + s / 1000,
                          "answerable_acc": 0.5 + 0.05 * (m == INBOL), "over_refusal": 0.2 - 0.03 * (m == INBOL),
                          "unanswerable_refr": 0.7 + s / 100, "aurc": 0.3 - 0.02 * (m == INBOL),
                          "coverage": 0.6 + s / 10}
                         for m in METHODS for s in (0, 1) for split in evaluation.TEST_SPLITS])


def test_two_replicates_give_sentences_and_cells_without_a_verdict():
    """The smoke profile runs two seeds: every phrase says that the methods cannot be compared,
    with the differences and the number of replicates, and no verdict word or interval."""
    runs = _two_seed_runs()
    comparisons = evaluation.comparisons(runs)
    assert set(comparisons["verdict"]) == {metrics.TOO_FEW}
    said = [
        prose.headline_verdict(comparisons, "InBoL", {IDKIT: "IDK-IT alone", BASE: "the base model"}, "test"),
        prose.change_phrase(comparisons, "InBoL", IDKIT, "IDK-IT alone", "test"),
        prose.frontier_phrase(evaluation.comparisons(runs, ["aurc", "coverage"]), "InBoL", IDKIT, "IDK-IT alone",
                             "ood"),
    ]
    assert said == [
        "InBoL cannot be compared with IDK-IT alone (+0.100) or the base model (+0.100) from 2 replicates "
        "(a verdict needs 3)",
        "against IDK-IT alone, InBoL cannot be compared on Trust (+0.100), helpfulness (+0.050), over-refusal "
        "(-0.030) or refusal of unanswerable questions (+0.000) from 2 replicates (a verdict needs 3)",
        "InBoL's and IDK-IT alone's frontiers cannot be compared on AURC (-0.020) or the share of questions they "
        "answer (+0.000) from 2 replicates (a verdict needs 3)",
    ]
    table = prose.comparison_table(comparisons, {m: REGISTRY[m].label for m in METHODS})
    assert table.loc[("test", "InBoL vs IDK-IT"), "Trust"] == "n<3 +0.100"
    assert table.stack().str.startswith("n<3 ").all()


def test_a_verdict_phrase_without_a_verdict_names_its_replicates():
    one_seed = _comparisons({"IDK-IT": (0.3, -math.inf, math.inf, metrics.TOO_FEW)}, n=1).iloc[0]
    assert prose.verdict_phrase(one_seed, "IDK-IT alone") == (
        "cannot be compared with IDK-IT alone (+0.300) from 1 replicate (a verdict needs 3)")
    # a rival with a verdict first, whatever the order asked for; those without one after it
    mixed = pd.concat([_comparisons({"base": (0.3, 0.2, 0.4, "beats")}),
                       _comparisons({"IDK-IT": (0.1, 0.1, 0.1, metrics.TOO_FEW)}, n=2)])
    assert prose.headline_verdict(mixed, "InBoL", {"IDK-IT": "IDK-IT alone", "base": "the base model"}, "test") == (
        "InBoL beats the base model (+0.300, 95% interval +0.200 to +0.400) and cannot be compared with IDK-IT "
        "alone (+0.100) from 2 replicates (a verdict needs 3)")


@pytest.mark.parametrize("n, said, flagged", [
    (2, metrics.TOO_FEW, False), (3, metrics.TOO_FEW, True), (2, "beats", True), (3, "beats", False),
])
def test_the_prose_check_accepts_no_verdict_exactly_below_three_seeds(n, said, flagged):
    """Chapter 4's glue, as the book's contradiction check reads it: a Trust difference whose
    narrow interval lies above 0."""
    glue = {"n_seeds": n, "verdict_inbol_vs_base_test": said, "low_inbol_vs_base_test": 0.1,
            "high_inbol_vs_base_test": 0.2, "diff_inbol_vs_base_test": 0.15}
    assert bool(verdict_contradictions(glue)) == flagged


def test_headline_table_is_mean_and_sd_per_method():
    runs = pd.DataFrame([{"method": m, "split": s, "seed": seed, **{c: v + seed / 100 for c in evaluation.HEADLINE}}
                         for m, v in (("base", 0.1), ("InBoL", 0.5)) for s in ("test", "ood") for seed in (0, 2)])
    table = prose.headline_table(evaluation.mean_spread(runs), {"InBoL": "InBoL", "base": "base"})
    assert list(table.index) == ["InBoL", "base"]
    assert list(table.columns) == list(prose.HEADLINE_COLUMNS.values())
    assert table.loc["InBoL", "Trust in-domain"] == "0.51\u00a0±\u00a00.01"  # seeds 0.50 and 0.52
    assert table.loc["base", "helpfulness"] == "0.11\u00a0±\u00a00.01"


def test_spread_table_is_one_split_of_the_measurable_columns():
    runs = pd.DataFrame([{"method": m, "split": s, "seed": seed, "trust": v + seed / 100 + (s == "ood"), "acc": v}
                         for m, v in (("base", 0.1), ("InBoL", 0.5)) for s in ("test", "ood") for seed in (0, 2)])
    table = evaluation.mean_spread(runs, ["trust", "acc"])
    shown = prose.spread_table(table, "ood", {"trust": "Trust", "over_refusal": "over-refusal", "acc": "Acc"},
                              {"InBoL": "InBoL", "base": "the base"})
    assert list(shown.columns) == ["Trust", "Acc"]  # over_refusal: not measured, left out
    assert shown.index.name == "ood" and list(shown.index) == ["InBoL", "the base"]
    assert shown.loc["InBoL", "Trust"] == "1.510\u00a0±\u00a00.014" and shown.loc["the base", "Acc"] == "0.100\u00a0±\u00a00.000"


def test_phrases_follow_the_numbers():
    assert prose.size_phrase(0.11, 0.10, "noise") == "about what noise predicts"
    assert prose.size_phrase(0.20, 0.10, "noise") == "more than noise predicts"
    assert prose.size_phrase(0.05, 0.10, "noise") == "less than noise predicts"
    assert [prose.correlation_phrase(r) for r in (0.95, 0.7, 0.1)] == [
        "track each other closely", "agree, but loosely", "barely agree"]
    assert prose.correlation_phrase(float("nan")).startswith("cannot be compared")
    assert "answer everything" in prose.untrained_refusal_phrase(0.0)
    assert "answer everything" not in prose.untrained_refusal_phrase(0.02)


def test_a_sentence_with_a_missing_number_is_replaced_whole():
    said = "IDK-IT refuses {idkit:.3f}, InBoL {inbol:.3f}"
    assert prose.phrase(said, "not measured", idkit=0.5, inbol=np.float64(0.25)) == "IDK-IT refuses 0.500, InBoL 0.250"
    assert prose.phrase(said, "not measured", idkit=0.5, inbol=np.float64("nan")) == "not measured"
    assert prose.phrase("{n} seeds: {verdict}", "-", n=2, verdict="is level with") == "2 seeds: is level with"


def test_a_real_source_gets_a_banner_per_chapter_and_the_generated_world_none(capsys):
    from unittest import mock

    shown = []
    with mock.patch("IPython.display.display", side_effect=shown.append):
        prose.source_banner("generated", 0)
        assert shown == []
        for chapter in range(5):
            prose.source_banner("easy_vqa", chapter)
    texts = [m.data for m in shown]
    assert len(texts) == 5 and len(set(texts)) == 5  # one note per chapter, each its own
    assert all(t.startswith(":::{note}") and t.endswith(":::") and "easy-VQA" in t for t in texts)


def test_sampling_phrase_says_how_each_model_reads_a_sampled_prompt():
    assert prose.sampling_phrase(True, False) == ("once per sample, where this run's model read it once for all "
                                                 "its samples")
    assert prose.sampling_phrase(False, False) == "once per sample, as this run's model does"
    assert prose.sampling_phrase(True, True) == "once for all its samples, as this run's model does"


def test_comparison_phrases_call_a_gap_within_the_spread_no_difference():
    words = ("more often than", "less often than", "about as often as")
    assert prose.difference_phrase(0.47, 0.75, 0.29, *words) == "about as often as"
    assert prose.difference_phrase(0.47, 0.75, 0.10, *words) == "less often than"
    assert prose.difference_phrase(0.90, 0.75, 0.10, *words) == "more often than"
    c = [0, 0.5, 1, 2, 4]
    assert prose.crossing_phrase(pd.Series([False, True, True, True, True], index=c)) == "from c = 0.5 on"
    assert prose.crossing_phrase(pd.Series([True] * 5, index=c)) == "at every c shown"
    assert prose.crossing_phrase(pd.Series([False] * 5, index=c)) == "at no c shown"
    assert prose.crossing_phrase(pd.Series([True, False, False, False, True], index=c)) == "at c = 0 and 4"
    assert prose.crossing_phrase(pd.Series([False, False, True, False, False], index=c)) == "at c = 1"


def test_top_shares_name_the_parts_that_make_up_most_of_a_whole():
    refusals = pd.Series({"where": 245, "fact": 941, "shape": 25, "identify": 27, "count": 0})
    assert prose.top_shares_phrase(refusals) == "fact (76%) and where (20%), 96% in all"
    assert prose.top_shares_phrase(pd.Series({"a": 9, "b": 1})) == "a (90%)"
    assert prose.top_shares_phrase(pd.Series({"a": 0, "b": 0})) is None
    assert prose.top_shares_phrase(pd.Series({"a": 1, "b": 1, "c": 1, "d": 1})) == "a (25%), b (25%) and c (25%), 75% in all"


def test_known_clauses_leave_out_the_numbers_a_run_lacks():
    said = {"with the margin form": 0.3391, "with no term at all": float("nan"), "with the label alone": 0.3}
    assert prose.known_clauses(said) == "with the margin form 0.339 and with the label alone 0.300"
    assert prose.known_clauses({"alone": float("nan")}) is None


def test_extremes_phrase_names_the_weakest_and_strongest_type_only_when_they_differ():
    accuracy = pd.Series({"color": 0.97, "where": 0.54, "count": 0.90})
    assert prose.extremes_phrase(accuracy, "is answered worst", "best") == (
        '"where" is answered worst (54.0%) and "color" best (97.0%)')
    close = pd.Series({"color": 0.93, "shape": 0.91})
    assert prose.extremes_phrase(close, "is answered worst", "best") == (
        "the question types lie close together, from 91.0% to 93.0%")
    assert prose.extremes_phrase(pd.Series({"color": 0.5}), "x", "y") == '"color" is the only question type (50.0%)'
    assert prose.extremes_phrase(pd.Series({"color": 1.0, "shape": 1.0}), "x", "y") == "every question type lies at 100.0%"
    with pytest.raises(ValueError, match="at least one question type"):
        prose.extremes_phrase(pd.Series(dtype=float), "x", "y")


def test_threshold_phrase_says_which_exposures_fall_below_tau():
    means = pd.Series({0: 0.0, 1: 0.1, 3: 0.3, 10: 0.7, 30: 0.95, 100: 0.99})
    assert prose.threshold_phrase(means, 0.5) == (
        "below τ = 0.5 for facts shown 0, 1 or 3 times and at or above it for facts shown 10, 30 or 100 times")
    assert prose.threshold_phrase(means, 0.05) == (
        "below τ = 0.05 for facts shown 0 times and at or above it for facts shown 1, 3, 10, 30 or 100 times")
    assert prose.threshold_phrase(means, 1.0) == "below τ = 1 at every exposure"
    assert prose.threshold_phrase(means.iloc[1:], 0.1) == "at or above τ = 0.1 at every exposure"
