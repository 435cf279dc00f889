import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbol_utils.answers import (
    REFUSAL_RESPONSES,
    RESPONSE_TYPES,
    classify_response,
    is_hybrid,
    is_refusal,
    normalize_answer,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Red", "red"),
        ("  red.  ", "red"),
        ("The red square!", "red square"),
        ("three circles", "3 circles"),
        ("a circle", "circle"),
        ("An orange", "orange"),
        ("the the circle", "circle"),
        ("the", "the"),
        ("Three", "3"),
        ("ten", "10"),
        ("3", "3"),
        ("zero", "0"),
        ("Top-Left", "top left"),
        ("top   left", "top left"),
        ("Grey", "gray"),
        ("the colour grey", "color gray"),
        ("Velmora.", "velmora"),
        ("don\u2019t", "dont"),
        ("under_score", "under score"),
        ("", ""),
        ("  ...  ", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@given(st.text())
def test_normalize_answer_idempotent(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once


@given(st.text())
def test_normalize_answer_has_no_surrounding_or_double_spaces(text):
    out = normalize_answer(text)
    assert out == out.strip() and "  " not in out


REFUSALS = [
    "I don't know.",
    "I don\u2019t know",
    "I DO NOT KNOW",
    "i dont know",
    "I'm not sure.",
    "I\u2019m not sure.",
    "im not sure",
    "I am not certain",
    "I am unsure what colour it is.",
    "I have no idea",
    "It is unclear from the image.",
    "I'm not certain, but it may be red",
    "No idea.",
    "I cannot determine the colour from this image.",
    "I can't tell.",
    "I can not see any circle.",
    "I'm unable to identify the shape.",
    "I am not able to answer that",
    "I do not see a red circle here.",
    "Sorry, I can't answer that",
    "Sorry, I cannot answer that question.",
    "It is impossible to tell.",
    "It's not possible to determine the shape.",
    "The colour cannot be determined.",
    "This can't be answered from the picture.",
    "Unanswerable",
    "This question is not answerable.",
    "not enough information",
    "I don't have enough information",
    "There is not enough context to answer.",
    "Insufficient information.",
    "The image does not contain a red circle.",
    "The picture doesn't show any square.",
    "There is no object in the top left.",
    "There's no red circle in the image.",
    "There isn't a square.",
    "The circle is not visible.",
]

NOT_REFUSALS = [
    "I know it's red",
    "I know it\u2019s red",
    "red",
    "Red.",
    "I am sure it is a circle",
    "I'm sure: blue",
    "the answer is no",
    "no",
    "not red but blue",
    "none of them are red",
    "3",
    "top left",
    "velmora",
    "I can see a red circle.",
    "I think it is green.",
    "I can't stress this enough: red",
    "circle, I think",
    "Don't worry, it's red.",
    "",
    "   ",
]


@pytest.mark.parametrize("response", REFUSALS)
def test_is_refusal_detects_refusals(response):
    assert is_refusal(response)


@pytest.mark.parametrize("response", NOT_REFUSALS)
def test_is_refusal_leaves_answers_alone(response):
    assert not is_refusal(response)


def test_refusal_responses_are_enough_and_detected():
    assert len(REFUSAL_RESPONSES) >= 8
    assert len(set(REFUSAL_RESPONSES)) == len(REFUSAL_RESPONSES)
    for response in REFUSAL_RESPONSES:
        assert is_refusal(response), response


def test_refusal_responses_suit_a_word_level_tokenizer():
    word = r"[a-z]+(?:'[a-z]+)?"
    for response in REFUSAL_RESPONSES:
        assert re.fullmatch(rf"{word}(?: {word})*", response), response
        assert len(response.split()) <= 9, response


@given(
    st.sampled_from(REFUSAL_RESPONSES + tuple(REFUSALS)),
    st.lists(st.text(), max_size=3),
)
def test_classify_refusal_phrase_is_always_refusal(response, gold_answers):
    assert classify_response(response, gold_answers) == "refusal"


@given(st.text(), st.lists(st.text(), max_size=3))
def test_classify_returns_a_response_type(response, gold_answers):
    assert classify_response(response, gold_answers) in RESPONSE_TYPES


@pytest.mark.parametrize(
    "response, gold, expected",
    [
        ("Red.", ["red"], "correct"),
        ("three", ["3"], "correct"),
        ("the grey one", ["gray one"], "correct"),
        ("Top-left", ["top left"], "correct"),
        ("circle", ["square", "a circle"], "correct"),
        ("blue", ["red"], "wrong"),
        ("red circle", ["red"], "wrong"),
        ("red", [], "wrong"),
        ("I don't know", ["red"], "refusal"),
        ("I don't know", [], "refusal"),
        ("", ["red"], "wrong"),
        ("", [""], "wrong"),
        ("   ", [], "wrong"),
    ],
)
def test_classify_response(response, gold, expected):
    assert classify_response(response, gold) == expected


@pytest.mark.parametrize("response", [
    "purple i cannot answer that",
    "triangle not sure about that",
    "I think it's red, but I'm not sure.",
    "red. I don't know",
    "velmora i have no idea",
])
def test_answer_then_refusal_is_a_hybrid(response):
    """It states an answer, then declines: the user has heard an answer, so it is not a refusal
    (and not correct, even when the answer was right)."""
    assert is_refusal(response) and is_hybrid(response)
    assert classify_response(response, ["red", "purple", "triangle", "velmora"]) == "hybrid"


@pytest.mark.parametrize("response", [
    *REFUSAL_RESPONSES,
    "Sorry, but I cannot tell from this image.",
    "Unfortunately, the image does not show that.",
    "Based on the image, I cannot determine that.",
    "I'm afraid I don't know.",
    "The red circle is not visible.",
    "There is no red circle in the image, so I can't say.",
    "I'm not sure, maybe red",  # a hedge that never commits: a refusal
])
def test_lead_ins_and_absence_are_plain_refusals(response):
    assert classify_response(response, ["red"]) == "refusal"
