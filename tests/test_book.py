"""The phrases and tables the introduction glues from chapter 4: chosen from the numbers."""
import math
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from inbol_utils.book import prose, readings, tables
from inbol_utils import evaluation, metrics
from inbol_utils.methods import ABSTAIN, BASE, CONTROL, DPO, IDKIT, INBOL, METHODS, REGISTRY, TRAINED
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


# ---------------------------------------------------------------------------- chapter 4's readings


def test_glue_values_glues_each_name_as_a_python_number(monkeypatch):
    glued = []
    monkeypatch.setattr(prose, "glue", lambda name, value, display: glued.append((name, value, type(value), display)))
    prose.glue_values({"n": np.int64(3), "x": np.float64(0.25), "said": "is level with"})
    assert glued == [("n", 3, int, False), ("x", 0.25, float, False), ("said", "is level with", str, False)]


def _main_table(**trust: list[float]) -> pd.DataFrame:
    """`evaluation.mean_spread` of every method on two seeds; Trust as given (default 0.2, 0.4)."""
    runs = pd.DataFrame([{"method": m, "split": split, "seed": seed,
                          "trust": trust.get(REGISTRY[m].key, [0.2, 0.4])[seed],
                          "over_refusal": 0.1 + seed / 10, "known_refr": 0.05, "unanswerable_refr": 0.6 + seed / 5,
                          "beyond_intrinsic_refr": 0.3 * (m == INBOL)}
                         for m in METHODS for split in evaluation.TEST_SPLITS for seed in (0, 1)])
    return evaluation.mean_spread(runs, ["trust", "over_refusal", "known_refr", "unanswerable_refr",
                                         "beyond_intrinsic_refr"])


def test_main_table_values_name_every_cell_and_leave_what_is_not_measured_nan():
    values = readings.main_table_values(_main_table(inbol=[0.5, 0.7]))
    assert len(values) == 2 * len(METHODS) * len(readings.COLUMNS) * 2
    assert values["inbol_test_trust"] == pytest.approx(0.6)
    assert values["inbol_test_trust_sd"] == pytest.approx(0.02 ** 0.5)  # seeds 0.5 and 0.7
    assert values["base_ood_unanswerable_refr"] == pytest.approx(0.7)
    assert math.isnan(values["control_test_acc"]) and math.isnan(values["control_test_acc_sd"])  # not in the table
    assert readings.never_shown_reading(_main_table()) == (
        "Of queries about never-shown facts, IDK-IT refuses 0.000, InBoL 0.300")
    assert readings.never_shown_reading(_main_table().drop(columns="beyond_intrinsic_refr", level=0)) == (
        "Refusal of never-shown facts is not known on this source")


def test_main_tables_are_the_three_narrow_views_and_a_missing_column_is_noted():
    shown = readings.main_tables(_main_table(), "ood", {INBOL: "InBoL", BASE: "base"})
    assert [list(t.columns) for t in shown] == [["Trust"], ["over-refusal", "known refr"],
                                                 ["RefR unans.", "RefR unseen fact"]]
    notes = []
    with mock.patch("IPython.display.display", side_effect=notes.append):
        readings.note_unmeasured(_main_table(), "easy_vqa")
    assert len(notes) == 1 and notes[0].data.startswith("*Acc, RefR, Err, hybrid, helpful, known acc: not known")
    with mock.patch("IPython.display.display", side_effect=notes.append):
        readings.warn_below_targets(pd.DataFrame({"seed": [0, 1], "world": [0, 1], "meets_targets": [True, True]}))
        assert len(notes) == 1  # every base model met its targets: no warning
        readings.warn_below_targets(pd.DataFrame({"seed": [0, 1], "world": [0, 4], "meets_targets": [True, False]}))
    assert notes[1].data.startswith(":::{admonition} Base models below their targets\n:class: warning\n1 of 2 base")


def test_verdict_values_name_each_trust_comparison():
    comparisons = pd.concat([_comparisons({BASE: (0.3, 0.2, 0.4, "beats"),
                                           IDKIT: (-0.01, -0.05, 0.03, "is level with")}),
                             _comparisons({IDKIT: (0.5, 0.4, 0.6, "beats")}, "answerable_acc")])
    assert readings.verdict_values(comparisons) == {
        "verdict_inbol_vs_base_test": "beats", "diff_inbol_vs_base_test": 0.3, "low_inbol_vs_base_test": 0.2,
        "high_inbol_vs_base_test": 0.4, "verdict_inbol_vs_idkit_test": "is level with",
        "diff_inbol_vs_idkit_test": -0.01, "low_inbol_vs_idkit_test": -0.05, "high_inbol_vs_idkit_test": 0.03}


def _runs(inbol: float, seeds: int = 3) -> pd.DataFrame:
    """Every method's Trust on each seed and split, InBoL `inbol` ahead of the others."""
    return pd.DataFrame([{"method": m, "seed": s, "split": split, "trust": 0.2 + s / 100 + inbol * (m == INBOL)}
                         for m in METHODS for s in range(seeds) for split in evaluation.TEST_SPLITS])


def test_claim_values_read_the_papers_claims_from_the_verdicts():
    ahead = readings.claim_values(evaluation.comparisons(_runs(0.1), ["trust"]), 3)
    assert ahead == {"paper_claim_base": "agrees with", "paper_claim_idkit": "agrees with", "dof": 2,
                     "t_quantile": pytest.approx(4.303, abs=1e-3)}
    level = readings.claim_values(evaluation.comparisons(_runs(0.0), ["trust"]), 3)
    assert level["paper_claim_base"] == level["paper_claim_idkit"] == "does not confirm"
    behind = readings.claim_values(evaluation.comparisons(_runs(-0.1), ["trust"]), 3)
    assert behind["paper_claim_base"] == behind["paper_claim_idkit"] == "contradicts"
    two = readings.claim_values(evaluation.comparisons(_runs(0.1, seeds=2), ["trust"]), 2)
    assert two["paper_claim_idkit"] == "cannot test (from 2 replicates; a verdict needs 3)" and two["dof"] == 1


def test_headline_change_and_frontier_phrases_are_named_by_rival_and_split():
    comparisons = evaluation.comparisons(_runs(0.1), ["trust"])
    verdicts = readings.headline_verdicts(comparisons)
    assert list(verdicts) == ["headline_verdict_test", "headline_verdict_ood"]
    assert verdicts["headline_verdict_ood"].startswith("InBoL beats IDK-IT alone (+0.100") and "and beats the base" in \
        verdicts["headline_verdict_ood"]
    changes = readings.change_phrases(comparisons)
    assert list(changes) == [f"change_{key}_{split}" for key in ("base", "idkit", "dpo", "control")
                             for split in evaluation.TEST_SPLITS]
    assert changes["change_control_ood"] == ("against the control, InBoL scores a higher Trust (+0.100, 95% interval "
                                             "+0.100 to +0.100)")
    frontier_runs = _runs(0.0).rename(columns={"trust": "aurc"}).assign(coverage=0.5, selective_accuracy=0.8)
    frontier_runs = frontier_runs[frontier_runs["method"] != ABSTAIN]
    phrases = readings.frontier_phrases(evaluation.comparisons(frontier_runs, ["aurc", "coverage"]))
    assert set(phrases) == {f"frontier_{k}_{s}" for k in ("base", "idkit", "dpo", "control") for s in ("test", "ood")}
    assert phrases["frontier_idkit_test"].startswith("InBoL and IDK-IT alone share one frontier and one place on it")
    tables = readings.frontier_tables(frontier_runs, {m: REGISTRY[m].label for m in METHODS})
    assert [t.index.name for t in tables] == ["test", "ood"] and list(tables[0].index) == ["base", "IDK-IT", "DPO",
                                                                                            "InBoL", "control"]
    assert tables[1].loc["InBoL", "right, of those"] == "0.800\u00a0±\u00a00.000"


def _scored_inside() -> pd.DataFrame:
    """In-domain answers inside the boundaries on two seeds: InBoL refuses 2 of 4 on seed 0 (both
    "fact") and 1 of 4 on seed 1 ("where"), with one hybrid; every other method answers all."""
    rows = []
    for m in METHODS:
        for seed in (0, 1):
            types = (["refusal", "refusal", "correct", "hybrid"] if seed == 0 else ["refusal", "correct", "correct",
                                                                                    "wrong"]) if m == INBOL else \
                ["correct"] * 4
            qtypes = ["fact", "fact", "where", "color"] if seed == 0 else ["where", "fact", "color", "color"]
            rows += [{"method": m, "seed": seed, "split": "test", "region_truth": "inside", "qtype": q,
                      "response_type": t, "response": "red i don't know" if t == "hybrid" else "x"}
                     for q, t in zip(qtypes, types)]
    return pd.DataFrame(rows)


def test_inside_readings_say_where_the_over_refusal_comes_from():
    said = readings.inside_readings(_scored_inside(), _main_table(), intrinsic_truth=True)
    assert said["inside_reading"].startswith(
        "Inside the world's boundaries, IDK-IT refuses 0.000 of the queries, vanilla DPO 0.000, InBoL 0.375 and the "
        "control 0.000. Most of InBoL's refusals there are of a few question types: fact (67%) and where (33%), "
        "100% in all. Compare the figure")
    assert said["hybrid_reading"] == ("Their share inside the boundaries is 0.125 after InBoL, 0.000 after vanilla "
                                      "DPO, 0.000 after IDK-IT and 0.000 after the control (InBoL's most frequent: "
                                      "“red i don't know”)")
    assert said["known_reading"] == ("against 0.150 of the queries inside the world's boundaries, so part of what the "
                                     "world calls over-refusal is the refusal of queries the base model never knew")
    no_hybrid = _scored_inside().replace({"response_type": {"hybrid": "correct"}})
    assert readings.inside_readings(no_hybrid, _main_table(), True)["hybrid_reading"] == (
        "In this run no method gave one inside the boundaries")
    real = readings.inside_readings(_scored_inside(), _main_table(), intrinsic_truth=False)
    assert real["inside_reading"].startswith("Which answerable queries lie inside the world's boundaries is not known")
    assert real["hybrid_reading"].startswith("Which queries lie inside the boundaries is not known")
    assert real["known_reading"] == (
        "while which answerable queries lie inside the boundaries is not known on this source")


def _held(inbol_seen: list[float], inbol_held: list[float], idkit_held: list[float]) -> pd.DataFrame:
    """`evaluation.heldout_refusal_table`'s frame for constructions only (a source without never-shown facts)."""
    rates = {(INBOL, "seen"): inbol_seen, (INBOL, "held out"): inbol_held, (IDKIT, "held out"): idkit_held,
             (IDKIT, "seen"): [0.9, 0.9]}
    return pd.DataFrame([{"method": m, "seed": s, "kind": "construction", "heldout": seen == "held out",
                          "refusal_rate": rate, evaluation.SEEN: seen}
                         for (m, seen), values in rates.items() for s, rate in enumerate(values)])


def test_grid_edges_phrase_says_which_choices_sit_at_an_edge_of_their_grid():
    two_values = {"IDK-IT's learning rate": ([2e-4, 4e-4], 4e-4), "CA-DPO's β": ([0.5, 0.1], 0.1)}
    assert prose.grid_edges_phrase(two_values) == (
        "All 2 tuned settings sit at an edge of their grid (a grid of two values has nothing inside): IDK-IT's "
        "learning rate (0.0004, the highest of 0.0002 and 0.0004) and CA-DPO's β (0.1, the lowest of 0.1 and 0.5). "
        "A setting at an edge may have a better value beyond it, which only a wider grid can show")
    assert prose.grid_edges_phrase({"a": ([1, 2, 3], 3), "b": ([1, 2, 3], 2), "c": ([5], 5)}) == (
        "1 of the 3 tuned settings sits at an edge of its grid: a (3, the highest of 1, 2 and 3); the others: "
        "b (2, inside its grid) and c (5, the only value tried). A setting at an edge may have a better value "
        "beyond it, which only a wider grid can show")
    assert prose.grid_edges_phrase({"b": ([1, 2, 3], 2)}) == (
        "No tuned setting sits at an edge of its grid: b (2, inside its grid)")


def test_grid_edge_reading_reads_each_methods_own_grid():
    chosen = {IDKIT: {"lr": 4e-4}, DPO: {"lr": 1e-4, "beta": 0.3}, INBOL: {"lr": 3e-5, "beta": 0.1},
              CONTROL: {"lr": 1e-4}}
    said = readings.grid_edge_reading(chosen, [2e-4, 4e-4], [3e-5, 1e-4], [0.1, 0.3, 0.5],
                                      {IDKIT: "IDK-IT", DPO: "DPO", INBOL: "CA-DPO", CONTROL: "the control"})
    assert said.startswith("5 of the 6 tuned settings sit at an edge of their grid: IDK-IT's learning rate (0.0004, "
                           "the highest of 0.0002 and 0.0004), DPO's learning rate (0.0001, the highest of 3e-05 and "
                           "0.0001), CA-DPO's learning rate (3e-05, the lowest of 3e-05 and 0.0001)")
    assert "; the others: DPO's β (0.3, inside its grid)." in said


def test_chosen_values_give_beta_only_where_a_method_tunes_it_and_each_trust_span():
    chosen = {IDKIT: {"lr": 4e-4, "stop_at": 240}, DPO: {"lr": 1e-4, "beta": 0.3, "stop_at": 90},
              INBOL: {"lr": 3e-5, "beta": 0.1, "stop_at": 120}, CONTROL: {"lr": 1e-4, "stop_at": 60}}
    selection = pd.DataFrame({"method": [m for m in TRAINED for _ in range(2)],
                              "trust": [0.1, 0.3, 0.2, 0.25, 0.0, 0.4, 0.3, 0.3]})
    values = readings.chosen_values(chosen, selection)
    assert values["chosen_lr_idkit"] == 4e-4 and values["chosen_steps_idkit"] == 240
    assert "chosen_beta_idkit" not in values and "chosen_beta_control" not in values
    assert values[f"chosen_beta_{REGISTRY[INBOL].key}"] == 0.1
    assert [round(values[f"trust_span_{REGISTRY[m].key}"], 6) for m in TRAINED] == [0.2, 0.05, 0.4, 0.0]


def test_heldout_values_compare_held_out_with_seen_within_the_spread():
    scored = pd.DataFrame({"heldout": [True, True, False, True], "family": ["unanswerable"] * 3 + ["knowledge"],
                           "construction": ["swapped", "blank", "noise", "none"]})
    values = readings.heldout_values(_held([0.8, 0.9], [0.5, 0.6], [0.9, 1.0]), scored)
    assert values["held_construction_seen"] == pytest.approx(0.85)
    assert values["held_construction_held_out_sd"] == pytest.approx(0.1 / 2 ** 0.5)
    assert math.isnan(values["held_unseen_fact_seen"])
    assert values["unseen_heldout_reading"] == (
        "This source has no never-shown facts, so only the construction is held out")
    assert values["generalisation_reading"] == (
        "So InBoL's refusal of the held-out construction is lower than its refusal of the constructions it was "
        "trained on. IDK-IT alone refuses the held-out construction 0.950 ± 0.071, more often than InBoL")
    assert values["heldout_constructions"] == "blank and swapped"
    close = readings.heldout_values(_held([0.5, 0.6], [0.3, 0.8], [0.5, 0.6]), scored.iloc[2:])
    assert close["generalisation_reading"].split(". ")[0].endswith("is within one sd over seeds of its refusal of the "
                                                                   "constructions it was trained on")
    assert close["generalisation_reading"].endswith("within one sd over seeds of InBoL")
    assert close["heldout_constructions"] == "none in this run"


def test_heldout_values_say_whether_refusing_never_shown_facts_rests_on_the_trained_entities():
    scored = pd.DataFrame({"heldout": [True], "family": ["unanswerable"], "construction": ["blank"]})
    constructions = _held([0.8, 0.9], [0.8, 0.9], [0.8, 0.9])

    def reading(seen: list[float], held: list[float]) -> str:
        facts = _held(seen, held, [0.5, 0.5]).query("method == @INBOL").assign(kind="unseen fact")
        return readings.heldout_values(pd.concat([constructions, facts]), scored)["unseen_heldout_reading"]

    assert reading([1.0, 0.98], [0.2, 0.6]) == (
        "For never-shown facts it refuses 0.990 ± 0.014 on entities in its training split and 0.400 ± 0.283 on "
        "held-out entities, less by over one sd over seeds: part of it rests on having trained on those very "
        "entities")
    assert reading([1.0, 0.98], [0.6, 1.0]).endswith("on held-out entities, within one sd over seeds: no sign that "
                                                      "it memorised which entities to refuse")
    assert reading([0.5, 0.52], [0.9, 0.92]).endswith("on held-out entities, more by over one sd over seeds")


def test_cost_values_say_where_inbol_lies_above_the_base_model():
    c_values = [0, 1, 4]
    trust = {BASE: [0.6, 0.3, -0.6], INBOL: [0.5, 0.35, -0.1], IDKIT: [0.4, 0.3, 0.0], DPO: [0.45, 0.3, -0.3],
             CONTROL: [0.5, 0.32, -0.2], ABSTAIN: [0.3, 0.2, 0.0]}
    c_rows = pd.DataFrame([{"method": m, "seed": 0, "split": split, "c": c, "trust": t}
                           for m, values in trust.items() for split in evaluation.TEST_SPLITS
                           for c, t in zip(c_values, values)])
    values = readings.cost_values(c_rows, c_values)
    assert values["inbol_above_base_test"] == values["inbol_above_base_ood"] == "from c = 1 on"
    assert (values["c_low"], values["c_high"]) == (0, 4) and isinstance(values["c_low"], int)
    assert values["trained_span_low"] == pytest.approx(0.1)  # IDK-IT 0.4 to InBoL and the control 0.5
    assert values["trained_span_high"] == pytest.approx(0.3)  # DPO -0.3 to IDK-IT 0.0
    assert set(TRAINED) < set(trust)


def _ablation_runs(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"ablation": a, "setting": s, "split": "test", "trust": t, "answerable_acc": acc,
                          "unanswerable_refr": refr, "beyond_intrinsic_refr": 0.25, "hybrid": 0.01}
                         for a, s, t, acc, refr in rows])


def test_tables_round_as_the_glued_prose_does():
    """0.3145 is written 0.315 by a glued `:.3f` and by the table (numpy's rounding gives 0.314)."""
    frame = pd.DataFrame({"x": [0.3145, np.float64(0.3185), np.nan], "n": [1, 2, 3], "s": ["a", "b", "c"]})
    shown = tables.rounded(frame, 3)
    assert shown["x"].tolist()[:2] == [0.315, 0.319] and math.isnan(shown["x"].iloc[2])
    assert [f"{v:.3f}" for v in shown["x"][:2]] == [f"{v:.3f}" for v in frame["x"][:2]]
    assert shown["n"].tolist() == [1, 2, 3] and shown["s"].tolist() == ["a", "b", "c"]
    assert tables.rounded(frame, {"x": 1})["x"].tolist()[:2] == [0.3, 0.3]


def test_the_ablation_table_and_long_frame_read_the_test_split_only():
    rows = [("anchor_weight", "0", 0.3145, 0.6, 0.9), ("anchor_weight", "1 (InBoL)", 0.35, 0.7, 0.8),
            ("pairs", "base samples", 0.2, 0.5, 0.95)]
    runs = pd.concat([_ablation_runs(rows), _ablation_runs(rows).assign(split="ood", trust=1.0)], ignore_index=True)
    table = tables.ablation_table(runs)
    assert list(table.columns) == ["Trust", "helpful", "RefR unans.", "hybrid"] and table.columns.name == "test"
    assert table.loc[("anchor_weight", "0"), "Trust"] == 0.315 and len(table) == 3
    long = tables.ablation_long(runs)
    assert len(long) == 3 * len(tables.ABLATION_METRICS) and set(long["split"]) == {"test"}
    assert list(dict.fromkeys(long["ablation"])) == ["anchor weight", "pair source"]  # sorted, then named
    row = long[(long["setting"] == "base samples") & (long["metric"] == "refuses unanswerable")]
    assert row["value"].tolist() == [0.95]


def test_the_label_noise_error_table_lists_the_noisiest_set_first():
    errors = pd.DataFrame([{"label_set": name, "seed": seed, "truth": truth, "region": "all",
                            "error": error + 0.001 * seed}
                           for name, error in (("likelihood", 0.0), ("N=1", 0.2), ("N=4", 0.1))
                           for truth in ("likelihood label", "ground truth") for seed in (0, 1)])
    table = tables.label_noise_errors(errors)
    assert table.index.tolist() == ["N=1", "N=4", "likelihood"]
    assert table.loc["N=1", ("likelihood label", "all")] == 0.201  # the mean over seeds, 0.2005, as :.3f writes it


def test_ablation_readings_compare_each_variant_with_the_reference():
    runs = pd.DataFrame([{"method": INBOL, "seed": s, "split": "test", "trust": 0.4 + s, "answerable_acc": 0.7,
                          "hybrid": 0.02, "unanswerable_refr": 0.8, "beyond_intrinsic_refr": 0.5} for s in (0, 1)])
    variants = _ablation_runs([("anchor_weight", "0", 0.3, 0.6, 0.95), ("ca_mode", "margin", 0.339, 0.7, 0.8),
                               ("sources", "extrinsic only", 0.3, 0.7, 0.8),
                               ("sources", "intrinsic only", 0.3, 0.7, 0.4)])
    said = readings.ablation_readings(variants, runs, 0, _main_table(), ["anchor", "ca_mode", "sources"])
    assert {k: said[k] for k in ("reference_trust", "reference_answerable_acc", "reference_hybrid")} == {
        "reference_trust": 0.4, "reference_answerable_acc": 0.7, "reference_hybrid": 0.02}
    assert said["anchor_reading"] == (  # 0.95 against 0.8, beyond the main table's sd (0.141)
        "Without the anchor: 0.300 (helpfulness 0.600, hybrids 0.010). It refuses 0.950 of the unanswerable queries "
        "against 0.800 with the anchor: without it the model drifts towards refusing")
    assert said["off_policy_reading"] == (
        "The off-policy pairs ablation did not run (add pairs to the ablations parameter)")
    assert said["ca_term_reading"] == "with the margin form 0.339"
    assert said["sources_reading"] == (
        "Trained on extrinsic IDK data only, the model refuses 0.250 of never-shown facts (InBoL: 0.500); trained on "
        "intrinsic data only, it refuses 0.400 of the unanswerable queries (InBoL: 0.800)")
    none = readings.ablation_readings(variants.iloc[:0], runs, 1, _main_table(), [])
    assert none["reference_trust"] == 1.4 and none["anchor_reading"].startswith("The anchor ablation did not run")
    assert none["ca_term_reading"].startswith("not measured: its ablations did not run")
    assert none["sources_reading"].startswith("The boundary-sources ablation did not run")
    unmeasured = readings.ablation_readings(variants.assign(beyond_intrinsic_refr=float("nan")), runs, 0, _main_table(),
                                            ["sources"])
    assert unmeasured["sources_reading"] == ("The boundary-sources ablation needs the refusal of never-shown facts, "
                                             "which is not known on this source")


def test_environment_values_say_how_many_setups_the_stages_ran_on():
    here = {"cpu": "x86_64", "cores": 16, "float_kernels": "AVX2", "torch_threads": 1, "python": "3.11.2",
            "libraries": {"torch": "2.13.0", "transformers": "4.0", "datasets": "3.0", "pandas": "2.2"}, "code": "a"}
    one = readings.environment_values({"03_training": {**here, "code": "b"}, "04_evaluation": here}, "04_evaluation")
    assert one == {"env_stages": "every stage ran on one machine with one set of libraries", "env_cpu": "x86_64",
                   "env_cores": 16, "env_float_kernels": "AVX2", "env_torch_threads": 1, "env_python": "3.11.2",
                   "env_torch": "2.13.0", "env_transformers": "4.0", "env_datasets": "3.0"}
    two = readings.environment_values({"03_training": {**here, "cores": 2}, "04_evaluation": here}, "04_evaluation")
    assert two["env_stages"].startswith("the stages ran on 2 different machines")


def test_the_trust_figure_draws_each_interval_in_its_methods_and_splits_panel():
    import matplotlib.pyplot as plt

    from inbol_utils.book import plots

    comparisons = pd.concat([
        _comparisons({BASE: (0.3, 0.2, 0.4, "beats"), IDKIT: (-0.01, -0.05, 0.03, "is level with")}, split=split)
        for split in evaluation.TEST_SPLITS] + [
        _comparisons({IDKIT: (0.1, 0.05, 0.15, "beats")}, split=split).assign(method="DPO")
        for split in evaluation.TEST_SPLITS] + [_comparisons({BASE: (9.0, 8.0, 10.0, "beats")}, "answerable_acc")],
        ignore_index=True)
    g = plots.trust_difference_intervals(comparisons)
    assert set(g.axes_dict) == {(m, s) for m in ("InBoL", "DPO") for s in evaluation.TEST_SPLITS}
    ax = g.axes_dict[("InBoL", "ood")]
    assert ax.get_title() == "InBoL minus rival, ood"
    whiskers = [segment[:, 0].tolist() for c in ax.collections for segment in getattr(c, "get_segments", list)()]
    assert sorted(whiskers) == [pytest.approx([-0.05, 0.03]), pytest.approx([0.2, 0.4])]  # Trust only, not helpfulness
    plt.close("all")


def test_chapter_4s_figures_have_a_panel_per_region_kind_split_and_ablation():
    import matplotlib.pyplot as plt

    from inbol_utils import ablations
    from inbol_utils.book import plots

    composition = pd.DataFrame([{"method": m, "region": r, "correct": 0.5, "refusal": 0.3, "hybrid": 0.0, "wrong": 0.2}
                                for m in (BASE, INBOL) for r in ("inside", "beyond-extrinsic")])
    titles = [ax.get_title() for ax in plots.response_composition(composition, [BASE, INBOL]).axes.flat]
    assert titles == ["inside", "beyond-extrinsic"]
    held = _held([0.8, 0.9], [0.5, 0.6], [0.9, 1.0])
    assert [ax.get_title() for ax in plots.heldout_refusal_bars(held, evaluation.SEEN).axes.flat] == [
        "kind = construction"]
    c_rows = pd.DataFrame([{"method": m, "seed": 0, "split": s, "c": c, "trust": 0.1} for m in (BASE, INBOL)
                           for s in evaluation.TEST_SPLITS for c in (0, 1)])
    assert [ax.get_title() for ax in plots.trust_against_cost(c_rows, [BASE, INBOL]).axes.flat] == ["test", "ood"]
    inside = pd.DataFrame({"qtype": ["fact", "where"], "refused": [0.3, 0.1], "method": [INBOL, INBOL]})
    assert plots.inside_refusals_by_type(inside, [INBOL]).ax.get_ylabel() == "refused, inside the boundaries"
    long = tables.ablation_long(_ablation_runs([("anchor_weight", "0", 0.3, 0.6, 0.95), ("pairs", "base samples",
                                                                                           0.2, 0.5, 0.9)]))
    assert [ax.get_title() for ax in plots.ablation_effects(long).axes.flat] == ["anchor weight", "pair source"]
    plt.close("all")


def test_against_reference_counts_the_verdicts_both_runs_give(tmp_path):
    """The classroom profile's chapter 4: which of the default study's in-domain verdicts on
    InBoL and vanilla DPO it reproduces; comparisons with too few replicates are left out."""
    def run(name, verdicts):
        (tmp_path / name / "results").mkdir(parents=True)
        rows = [dict(metric=m, method="InBoL", rival=r, split=s, diff=0.1, low=0.0, high=0.2, verdict=v, n=3)
                for (m, r, s), v in verdicts.items()]
        pd.DataFrame(rows).to_csv(tmp_path / name / "results" / "comparisons.csv", index=False)
        pd.DataFrame(columns=[*rows[0]]).to_csv(tmp_path / name / "results" / "aurc.csv", index=False)
        return str(tmp_path / name)

    reference = run("default", {("trust", "IDK-IT", "test"): "is level with", ("trust", "base", "test"): "beats",
                                ("over_refusal", "IDK-IT", "test"): "beats", ("trust", "base", "ood"): "beats"})
    here = run("classroom", {("trust", "IDK-IT", "test"): "is level with", ("trust", "base", "test"): "trails",
                             ("over_refusal", "IDK-IT", "test"): metrics.TOO_FEW, ("trust", "base", "ood"): "trails"})
    with mock.patch("inbol_utils.runner.parameters.PROJECT_ROOT", tmp_path):  # the runs inside the project
        text = readings.against_reference(reference, here).data
    assert "the reference run (`default`)" in text  # as the params file names it, not the machine's folder
    assert "Of the 2 in-domain verdicts" in text and "**1 agree**" in text
    assert "| InBoL against base | Trust | beats | trails | **no** |" in text
    assert readings.against_reference("", here) is None
    assert "has not been run here" in readings.against_reference(str(tmp_path / "nowhere"), here).data
