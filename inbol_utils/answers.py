"""Answer normalisation, refusal phrasings and refusal detection.

Every response is scored as one of RESPONSE_TYPES: "refusal" if it abstains in words
(is_refusal) and says nothing else first; "hybrid" if it abstains only after stating an answer
("purple i cannot answer that"): the user has been told something, so this study counts it as
an error, not a refusal; else "correct" if its canonical form (normalize_answer) equals that of
a gold answer, else "wrong". Short answers only: exact match on the canonical form.
"""
from __future__ import annotations

import re

RESPONSE_TYPES = ("correct", "refusal", "hybrid", "wrong")

# Training targets for IDK instruction tuning. The tokenizer is word-level and splits on
# whitespace, so: lowercase words, no punctuation except an apostrophe inside a word.
REFUSAL_RESPONSES: tuple[str, ...] = (
    "i don't know",
    "i am not sure",
    "i'm not sure about that",
    "i have no idea",
    "i cannot tell from this image",
    "i can't determine that",
    "sorry i cannot answer that",
    "i cannot answer this question",
    "the image does not show that",
    "it is impossible to tell from the image",
    "i do not have enough information to answer",
)

_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate("zero one two three four five six seven eight nine ten".split())
}
_SPELLING = {"grey": "gray", "colour": "color", "colours": "colors", "coloured": "colored"}
_ARTICLES = {"a", "an", "the"}


def normalize_answer(text: str) -> str:
    """Canonical form of a short answer, so that "The Grey one." style variants compare equal.

    Lowercase; apostrophes dropped (they join a word), every other punctuation mark or
    underscore becomes a space ("top-left" -> "top left"); number words zero..ten become digits;
    British spellings of gray/color become American; leading articles are dropped (only leading
    ones: "top left" and "velmora" have none, and an article in the middle can carry meaning).
    Idempotent: normalize_answer(normalize_answer(x)) == normalize_answer(x).
    """
    text = re.sub(r"['\u2019]", "", text.lower())
    words = re.sub(r"[^\w\s]|_", " ", text).split()
    words = [_SPELLING.get(w, _NUMBER_WORDS.get(w, w)) for w in words]
    while len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


# Refusal patterns, matched against the lowercased response with curly apostrophes made
# straight and whitespace collapsed. Apostrophes are optional ("dont", "cant") because models
# and tokenizers drop them. Each pattern needs an explicit negation or a word of inability, so
# "i know it's red", "i'm sure: blue" and "i am sure it is a circle" never match.
_NOT = r"(?:not|n'?t|never)"
_CANNOT = r"(?:can ?not|can'?t|can never|could ?not|couldn'?t|could never)"
# Two kinds: the speaker declines ("i'm not sure", "i can't tell"), or states something about
# the thing asked ("the colour cannot be determined", "the circle is not visible"). Only the
# first can follow an answer to make a hybrid (see is_hybrid); the second names its subject.
_DECLINE_PATTERNS = [
    # Not being sure or having no idea: "i'm not sure", "i am uncertain", "i have no idea".
    r"\bnot (?:sure|certain)\b",
    r"\b(?:unsure|uncertain)\b",
    r"\bno (?:idea|clue)\b",
    # Not knowing, or unable to do what the question asks: "i don't know", "sorry, i can't
    # answer that", "i cannot determine the colour", "i do not see a circle". The verb list is
    # closed, so "i can't stress enough: red" or "don't worry, it's red" are answers.
    rf"\b(?:{_CANNOT}|(?:unable|not able) to|(?:do|does|did) ?{_NOT}) "
    r"(?:tell|determine|answer|say|see|identify|know|judge|infer|confirm|verify|decide|"
    r"recogni[sz]e|make out|find|be sure|be certain)\b",
    # Missing information: "not enough information", "i don't have enough information".
    r"(?:\bnot|\bno|n't|\b(?:dont|doesnt|didnt)|\bwithout)(?: \w+){0,2} (?:enough|sufficient) "
    r"(?:information|info|context|details?|evidence)\b",
    r"\binsufficient (?:information|info|context|details?|evidence)\b",
]
_STATEMENT_PATTERNS = [
    # Impossibility stated impersonally: "it is impossible to tell", "the colour cannot be
    # determined", "unanswerable", "it is unclear".
    r"\b(?:impossible|not possible) to (?:tell|determine|answer|say|see|know|identify|judge)\b",
    rf"\b{_CANNOT} be (?:determined|answered|known|told|seen|identified)\b",
    r"\b(?:unanswerable|not answerable)\b",
    r"\bunclear\b",
    # The image lacks what is asked about: "the image does not contain a red circle", "there is
    # no object in the top left", "the circle is not visible". In this world such queries are
    # the extrinsic-unanswerable ones, so a claim of absence is how a model declines them.
    # Consequence: "there are no red circles" is a refusal even where the question was a count
    # or a yes/no question (the world's models answer those with a bare "0" or "no").
    rf"\b(?:image|picture|photo|scene) (?:does|do|did) ?{_NOT} "
    r"(?:show|contain|include|have|depict|display)\b",
    r"\bthere(?: is| are|'?s|'?re) (?:no|not|never)\b",
    r"\bthere (?:isn'?t|aren'?t)\b",
    r"\bnot (?:visible|present|shown|depicted)\b",
]
_DECLINE_RE = re.compile("|".join(f"(?:{p})" for p in _DECLINE_PATTERNS))
_REFUSAL_RE = re.compile("|".join(f"(?:{p})" for p in _DECLINE_PATTERNS + _STATEMENT_PATTERNS))


# Words that may come before the refusal itself without stating anything ("sorry, but i ...",
# "unfortunately the image ...", "based on the image i ..."). Any other word before the first
# refusal phrase is content: the response answered, then refused.
_LEAD_IN_WORDS = frozenset("""
    i im ive me my we you it its is this that the a an there here so but and well oh ok okay
    hmm um sorry unfortunately honestly really just simply actually afraid however based on
    from in to be have has am do does looking at image picture photo scene question answer
""".split())


def _normalise_spacing(response: str) -> str:
    return " ".join(response.lower().replace("\u2019", "'").replace("\u2018", "'").split())


def is_refusal(response: str) -> bool:
    """True if the response declines to answer, in any of the phrasings models use.

    Decisions: an empty or whitespace-only response is NOT a refusal (the model did not abstain
    explicitly; classify_response scores it "wrong"). Answers that merely contain a negation,
    e.g. "the answer is no", "not red but blue", "none of them are red", are answers, not
    refusals: only the patterns above count (not knowing, inability, impossibility, missing
    information, absence from the image). A hedge that contains one ("i'm not sure, maybe red")
    is a refusal: the model did not commit to the answer.
    """
    return _REFUSAL_RE.search(_normalise_spacing(response)) is not None


def is_hybrid(response: str) -> bool:
    """True if the response states something before it declines: a refusal whose text before
    the first declining phrase (not knowing, not being sure, unable to tell...) holds a word
    that is not a lead-in (`_LEAD_IN_WORDS`). "triangle not sure about that" and "i think it's
    red but i'm not sure" are hybrids; "sorry, i can't tell" is a plain refusal. A response
    that opens with a statement about the thing asked ("the red circle is not visible", "the
    colour cannot be determined") names its subject, so it is never a hybrid."""
    text = _normalise_spacing(response)
    match = _DECLINE_RE.search(text)
    first = _REFUSAL_RE.search(text)
    if match is None or first.start() < match.start():
        return False
    before = re.sub(r"['\u2019]", "", text[:match.start()])
    return any(word not in _LEAD_IN_WORDS for word in re.findall(r"\w+", before))


def classify_response(response: str, gold_answers: list[str]) -> str:
    """One of RESPONSE_TYPES. Refusal is checked first, so "i don't know" is never "correct",
    and an answer followed by a refusal is a "hybrid" whether or not the answer was right.

    With no gold answers (an unanswerable query) every non-refusal is "wrong". A response that
    normalises to the empty string is never correct.
    """
    if is_refusal(response):
        return "hybrid" if is_hybrid(response) else "refusal"
    answer = normalize_answer(response)
    if answer and any(answer == normalize_answer(gold) for gold in gold_answers):
        return "correct"
    return "wrong"


def refusal_words() -> set[str]:
    """Words of the refusal phrasings: the tokenizer must know them before IDK-IT teaches them."""
    return {word for phrase in REFUSAL_RESPONSES for word in phrase.split()}
