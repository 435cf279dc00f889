"""Risk-coverage frontiers (`inbol_utils.frontier`): curves and AURC by hand and by their
defining properties, then the model's propensity to refuse on a tiny model."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbol_utils import frontier
from inbol_utils.answers import REFUSAL_RESPONSES, classify_response


def test_curve_and_aurc_by_hand():
    """Four queries; answered in order of propensity: -1 (right), 0 (wrong), 0.5 (right), 2 (wrong).
    Selective accuracy 1/1, 1/2, 2/3, 2/4; risk 0, 1/2, 1/3, 1/2; AURC their mean, 1/3."""
    propensity, correct = [0.5, -1.0, 2.0, 0.0], [True, True, False, False]
    out = frontier.curve(propensity, correct)
    assert out["coverage"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert out["selective_accuracy"].tolist() == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2])
    assert frontier.aurc(propensity, correct) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_a_tie_counts_its_expected_accuracy_whatever_the_order_of_its_rows():
    """Propensities 0, 0 (one right, one wrong) then 1, 1 (both right): among the tie any order
    is as likely, so the first answer is right half the time: 0.5/1, 1/2, 2/3, 3/4."""
    for correct in ([True, False, True, True], [False, True, True, True]):
        out = frontier.curve([0.0, 0.0, 1.0, 1.0], correct)
        assert out["selective_accuracy"].tolist() == pytest.approx([0.5, 0.5, 2 / 3, 3 / 4])


def test_a_curve_needs_a_propensity_for_every_query():
    with pytest.raises(ValueError, match="nan"):
        frontier.curve([0.1, math.nan], [True, False])


outcomes = st.lists(st.booleans(), min_size=1, max_size=40)


@given(outcomes, st.randoms(use_true_random=False))
def test_no_ranking_beats_the_one_that_answers_every_right_answer_first(correct, random):
    shuffled = random.sample(range(len(correct)), len(correct))
    perfect = [0.0 if c else 1.0 for c in correct]
    assert frontier.aurc(perfect, correct) <= frontier.aurc(shuffled, correct) + 1e-12
    worst = [1.0 - p for p in perfect]
    assert frontier.aurc(worst, correct) >= frontier.aurc(shuffled, correct) - 1e-12


@given(outcomes, st.lists(st.floats(-5, 5), min_size=40, max_size=40))
def test_a_curve_ends_at_the_accuracy_of_answering_everything(correct, propensity):
    out = frontier.curve(propensity[:len(correct)], correct)
    assert out["coverage"].iloc[-1] == 1.0 and len(out) == len(correct)
    assert out["selective_accuracy"].iloc[-1] == pytest.approx(np.mean(correct))
    # a model that cannot tell its queries apart is as accurate at every coverage
    flat = frontier.curve([0.0] * len(correct), correct)
    assert flat["selective_accuracy"].to_numpy() == pytest.approx(np.full(len(correct), np.mean(correct)))


def test_operating_point_by_hand():
    """Answered 3 of 4 (coverage 0.75), 2 of them right; the refused query's a* does not count."""
    out = frontier.operating_point([True, True, False, True], [True, False, True, True])
    assert out == {"coverage": 0.75, "selective_accuracy": pytest.approx(2 / 3)}
    assert math.isnan(frontier.operating_point([False, False], [True, False])["selective_accuracy"])


def test_on_grid_takes_the_first_ceil_cn_answers():
    full = frontier.curve([0.5, -1.0, 2.0, 0.0], [True, True, False, False])  # 1, 1/2, 2/3, 1/2
    out = frontier.on_grid(full, (0.05, 0.25, 0.3, 0.75, 1.0))  # k = 1, 1, 2, 3, 4
    assert out["selective_accuracy"].tolist() == pytest.approx([1, 1, 1 / 2, 2 / 3, 1 / 2])
    assert out["coverage"].tolist() == [0.05, 0.25, 0.3, 0.75, 1.0]


def test_points_and_runs_keep_every_runs_curve_operating_point_and_aurc():
    rows = pd.DataFrame({"method": ["m"] * 4 + ["r"] * 4, "seed": 0, "split": "test",
                         "propensity": [0.5, -1.0, 2.0, 0.0] * 2, "correct": [True, True, False, False] * 2,
                         "answered": [True, True, False, True, True, True, True, True]})
    points = frontier.points(rows, grid=(0.5, 1.0))
    assert len(points) == 2 * (2 + 1) and set(points["point"]) == {"curve", "greedy"}
    runs = frontier.per_run(points).set_index("method")
    assert runs.loc["m", "aurc"] == pytest.approx(1 / 3) and runs.loc["r", "aurc"] == pytest.approx(1 / 3)
    assert runs.loc["m", "coverage"] == 0.75 and runs.loc["m", "selective_accuracy"] == pytest.approx(2 / 3)
    assert runs.loc["r", "coverage"] == 1.0 and runs.loc["r", "selective_accuracy"] == 0.5


def test_the_frontier_comparisons_are_the_registrys_between_models_with_a_frontier():
    from inbol_utils.methods import ABSTAIN, BASE, CONTROL, DPO, IDKIT, INBOL

    assert ABSTAIN not in frontier.METHODS
    assert frontier.PAIRS == {INBOL: (BASE, IDKIT, DPO, CONTROL), DPO: (IDKIT, CONTROL)}


def test_canonical_refusal_is_the_models_most_frequent():
    responses = ["i am not sure", "red", "i don't know", "i am not sure", "i have no idea", "i don't know"]
    types = ["refusal", "correct", "refusal", "refusal", "refusal", "refusal"]
    assert frontier.canonical_refusal(responses, types) == "i am not sure"  # tied with "i don't know": a < d
    assert frontier.canonical_refusal(responses[:3], types[:3]) == "i am not sure"
    assert frontier.canonical_refusal(["red", "blue"], ["correct", "wrong"]) == REFUSAL_RESPONSES[0]


def test_refusal_starts_are_the_first_word_of_every_refusal(processor):
    starts = frontier.refusal_starts(processor)
    words = {processor.tokenizer.decode(ids) for ids in starts}
    assert words == {r.split()[0] for r in REFUSAL_RESPONSES}  # i, i'm, sorry, the, it


def test_a_banned_token_is_never_generated(processor, tiny_model, tiny_world):
    """The untrained model's greedy answers start with some token; banned, it is gone."""
    from inbol_utils.generation import greedy_answers

    ds = tiny_world[0]["test"].select(range(8))
    images, questions = list(ds["image"]), ds["question"]
    first = [a.split()[0] for a in greedy_answers(tiny_model, processor, images, questions) if a.split()]
    assert first, "the tiny model answered nothing to ban"
    banned = processor.tokenizer(first[0], add_special_tokens=False)["input_ids"][:1]
    again = greedy_answers(tiny_model, processor, images, questions, bad_words_ids=[banned])
    assert all(first[0] not in a.split() for a in again)


def test_propensity_is_the_refusals_log_probability_less_the_best_answers(processor, tiny_model, tiny_world):
    """Two queries refused (one in the canonical phrasing): their a* is decoded again without
    refusals; the answered ones keep their answer. Both likelihoods are checked against
    `response_logprobs` one query at a time."""
    from inbol_utils import evaluation, world
    from inbol_utils.generation import response_logprobs

    ds = tiny_world[0]["test"].select(range(6))
    images = list(ds["image"])
    responses = ["i don't know", "red", "i don't know", "i cannot tell from this image", "2", "circle"]
    scored = evaluation.score(world.split_frame(ds), responses).assign(split="test")
    out = frontier.propensities(tiny_model, processor, images, scored, batch_size=4)
    assert out["answered"].tolist() == [False, True, False, False, True, True]
    assert out["refusal"].unique().tolist() == ["i don't know"]
    assert out.loc[[1, 4, 5], "answer"].tolist() == ["red", "2", "circle"]
    banned = {r.split()[0] for r in REFUSAL_RESPONSES}
    assert not any(set(answer.split()) & banned for answer in out.loc[[0, 2, 3], "answer"])
    for i in range(len(ds)):
        refusal, answer = response_logprobs(tiny_model, processor, [images[i]] * 2, [ds[i]["question"]] * 2,
                                            ["i don't know", out.loc[i, "answer"]]).tolist()
        assert out.loc[i, "refusal_logp"] == pytest.approx(refusal, abs=1e-4)
        assert out.loc[i, "answer_logp"] == pytest.approx(answer, abs=1e-4)
        assert out.loc[i, "propensity"] == pytest.approx(refusal - answer, abs=1e-4)
        assert out.loc[i, "correct"] == (classify_response(out.loc[i, "answer"], ds[i]["answers"]) == "correct")


def test_saved_propensities_are_made_once_and_check_their_scores(tmp_path, processor, tiny_model, tiny_world):
    from inbol_utils import evaluation, modeling, world
    from inbol_utils.runner.reuse import keep

    splits = {name: tiny_world[0][name].select(range(5)) for name in evaluation.TEST_SPLITS}
    world.save_world(splits, None, tmp_path / "world")
    modeling.save(tiny_model, processor, tmp_path / "model")
    scores = evaluation.score_splits(tiny_model, processor, splits, method="m")
    scores.to_parquet(tmp_path / "scores.parquet")
    for made, name in (("world", "w"), ("model", "m"), ("scores.parquet", "s")):
        keep(tmp_path, [made], name)
    loads = []

    def load(path):
        loads.append(path)
        return modeling.load(path)

    args = (tmp_path / "model", tmp_path / "world", tmp_path / "scores.parquet")
    first = frontier.saved_propensities(tmp_path / "out.parquet", *args, load=load)
    again = frontier.saved_propensities(tmp_path / "out.parquet", *args, load=load)
    assert len(loads) == 1 and len(first) == 10
    pd.testing.assert_frame_equal(first, again)
    assert first["id"].tolist() == scores["id"].tolist()

    (tmp_path / "scores.parquet").unlink()  # a link to the stored scores: another file, not written through
    scores.iloc[::-1].to_parquet(tmp_path / "scores.parquet")  # another order: the images would not match
    keep(tmp_path, ["scores.parquet"], "s2")
    with pytest.raises(ValueError, match="in their order"):
        frontier.saved_propensities(tmp_path / "out.parquet", *args, load=load)
