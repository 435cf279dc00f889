"""The phrases and tables the introduction glues from chapter 4: chosen from the numbers."""
import numpy as np
import pandas as pd
import pytest

from inbol_utils import book, evaluation


def _comparisons(verdicts: dict[str, tuple[float, float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"method": "InBoL", "split": "test", "rival": rival, "diff": d, "low": lo, "high": hi,
                          "verdict": v, "n": 3} for rival, (d, lo, hi, v) in verdicts.items()])


def test_headline_verdict_follows_the_numbers():
    comparisons = _comparisons({"base": (0.3, 0.2, 0.4, "beats"), "IDK-IT": (-0.01, -0.05, 0.03, "is level with")})
    sentence = book.headline_verdict(comparisons, "InBoL", {"base": "the base model", "IDK-IT": "IDK-IT alone"},
                                     "test")
    assert sentence == ("InBoL beats the base model (+0.300, 95% interval +0.200 to +0.400) and is level with "
                        "IDK-IT alone (-0.010, 95% interval -0.050 to +0.030)")
    flipped = _comparisons({"base": (-0.3, -0.4, -0.2, "trails")})
    assert book.headline_verdict(flipped, "InBoL", {"base": "the base model"}, "test").startswith(
        "InBoL trails the base model (-0.300")


def test_headline_table_is_mean_and_sd_per_method():
    runs = pd.DataFrame([{"method": m, "split": s, "seed": seed, **{c: v + seed / 100 for c in evaluation.HEADLINE}}
                         for m, v in (("base", 0.1), ("InBoL", 0.5)) for s in ("test", "ood") for seed in (0, 2)])
    table = book.headline_table(evaluation.mean_spread(runs), {"InBoL": "InBoL", "base": "base"})
    assert list(table.index) == ["InBoL", "base"]
    assert list(table.columns) == list(book.HEADLINE_COLUMNS.values())
    assert table.loc["InBoL", "Trust in-domain"] == "0.51\u00a0±\u00a00.01"  # seeds 0.50 and 0.52
    assert table.loc["base", "helpfulness"] == "0.11\u00a0±\u00a00.01"


def test_spread_table_is_one_split_of_the_measurable_columns():
    runs = pd.DataFrame([{"method": m, "split": s, "seed": seed, "trust": v + seed / 100 + (s == "ood"), "acc": v}
                         for m, v in (("base", 0.1), ("InBoL", 0.5)) for s in ("test", "ood") for seed in (0, 2)])
    table = evaluation.mean_spread(runs, ["trust", "acc"])
    shown = book.spread_table(table, "ood", {"trust": "Trust", "over_refusal": "over-refusal", "acc": "Acc"},
                              {"InBoL": "InBoL", "base": "the base"})
    assert list(shown.columns) == ["Trust", "Acc"]  # over_refusal: not measured, left out
    assert shown.index.name == "ood" and list(shown.index) == ["InBoL", "the base"]
    assert shown.loc["InBoL", "Trust"] == "1.510\u00a0±\u00a00.014" and shown.loc["the base", "Acc"] == "0.100\u00a0±\u00a00.000"


def test_phrases_follow_the_numbers():
    assert book.size_phrase(0.11, 0.10, "noise") == "about what noise predicts"
    assert book.size_phrase(0.20, 0.10, "noise") == "more than noise predicts"
    assert book.size_phrase(0.05, 0.10, "noise") == "less than noise predicts"
    assert [book.correlation_phrase(r) for r in (0.95, 0.7, 0.1)] == [
        "track each other closely", "agree, but loosely", "barely agree"]
    assert book.correlation_phrase(float("nan")).startswith("cannot be compared")
    assert "answer everything" in book.untrained_refusal_phrase(0.0)
    assert "answer everything" not in book.untrained_refusal_phrase(0.02)


def test_a_sentence_with_a_missing_number_is_replaced_whole():
    said = "IDK-IT refuses {idkit:.3f}, InBoL {inbol:.3f}"
    assert book.phrase(said, "not measured", idkit=0.5, inbol=np.float64(0.25)) == "IDK-IT refuses 0.500, InBoL 0.250"
    assert book.phrase(said, "not measured", idkit=0.5, inbol=np.float64("nan")) == "not measured"
    assert book.phrase("{n} seeds: {verdict}", "-", n=2, verdict="is level with") == "2 seeds: is level with"


def test_a_real_source_gets_a_banner_per_chapter_and_the_generated_world_none(capsys):
    from unittest import mock

    shown = []
    with mock.patch("IPython.display.display", side_effect=shown.append):
        book.source_banner("generated", 0)
        assert shown == []
        for chapter in range(5):
            book.source_banner("easy_vqa", chapter)
    texts = [m.data for m in shown]
    assert len(texts) == 5 and len(set(texts)) == 5  # one note per chapter, each its own
    assert all(t.startswith(":::{note}") and t.endswith(":::") and "easy-VQA" in t for t in texts)


def test_sampling_phrase_says_how_each_model_reads_a_sampled_prompt():
    assert book.sampling_phrase(True, False) == ("once per sample, where this run's model read it once for all "
                                                 "its samples")
    assert book.sampling_phrase(False, False) == "once per sample, as this run's model does"
    assert book.sampling_phrase(True, True) == "once for all its samples, as this run's model does"


def test_comparison_phrases_call_a_gap_within_the_spread_no_difference():
    words = ("more often than", "less often than", "about as often as")
    assert book.difference_phrase(0.47, 0.75, 0.29, *words) == "about as often as"
    assert book.difference_phrase(0.47, 0.75, 0.10, *words) == "less often than"
    assert book.difference_phrase(0.90, 0.75, 0.10, *words) == "more often than"
    c = [0, 0.5, 1, 2, 4]
    assert book.crossing_phrase(pd.Series([False, True, True, True, True], index=c)) == "from c = 0.5 on"
    assert book.crossing_phrase(pd.Series([True] * 5, index=c)) == "at every c shown"
    assert book.crossing_phrase(pd.Series([False] * 5, index=c)) == "at no c shown"
    assert book.crossing_phrase(pd.Series([True, False, False, False, True], index=c)) == "at c = 0 and 4"
    assert book.crossing_phrase(pd.Series([False, False, True, False, False], index=c)) == "at c = 1"


def test_top_shares_name_the_parts_that_make_up_most_of_a_whole():
    refusals = pd.Series({"where": 245, "fact": 941, "shape": 25, "identify": 27, "count": 0})
    assert book.top_shares_phrase(refusals) == "fact (76%) and where (20%), 96% in all"
    assert book.top_shares_phrase(pd.Series({"a": 9, "b": 1})) == "a (90%)"
    assert book.top_shares_phrase(pd.Series({"a": 0, "b": 0})) is None
    assert book.top_shares_phrase(pd.Series({"a": 1, "b": 1, "c": 1, "d": 1})) == "a (25%), b (25%) and c (25%), 75% in all"


def test_known_clauses_leave_out_the_numbers_a_run_lacks():
    said = {"with the margin form": 0.3391, "with no term at all": float("nan"), "with the label alone": 0.3}
    assert book.known_clauses(said) == "with the margin form 0.339 and with the label alone 0.300"
    assert book.known_clauses({"alone": float("nan")}) is None


def test_extremes_phrase_names_the_weakest_and_strongest_type_only_when_they_differ():
    accuracy = pd.Series({"color": 0.97, "where": 0.54, "count": 0.90})
    assert book.extremes_phrase(accuracy, "is answered worst", "best") == (
        '"where" is answered worst (54.0%) and "color" best (97.0%)')
    close = pd.Series({"color": 0.93, "shape": 0.91})
    assert book.extremes_phrase(close, "is answered worst", "best") == (
        "the question types lie close together, from 91.0% to 93.0%")
    assert book.extremes_phrase(pd.Series({"color": 0.5}), "x", "y") == '"color" is the only question type (50.0%)'
    assert book.extremes_phrase(pd.Series({"color": 1.0, "shape": 1.0}), "x", "y") == "every question type lies at 100.0%"
    with pytest.raises(ValueError, match="at least one question type"):
        book.extremes_phrase(pd.Series(dtype=float), "x", "y")


def test_threshold_phrase_says_which_exposures_fall_below_tau():
    means = pd.Series({0: 0.0, 1: 0.1, 3: 0.3, 10: 0.7, 30: 0.95, 100: 0.99})
    assert book.threshold_phrase(means, 0.5) == (
        "below τ = 0.5 for facts shown 0, 1 or 3 times and at or above it for facts shown 10, 30 or 100 times")
    assert book.threshold_phrase(means, 0.05) == (
        "below τ = 0.05 for facts shown 0 times and at or above it for facts shown 1, 3, 10, 30 or 100 times")
    assert book.threshold_phrase(means, 1.0) == "below τ = 1 at every exposure"
    assert book.threshold_phrase(means.iloc[1:], 0.1) == "at or above τ = 0.1 at every exposure"
