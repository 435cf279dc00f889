"""The phrases chapters 2 and 3 glue about their pairs, weights and selection: chosen from the numbers."""
import pandas as pd
import pytest

from inbol_utils.book import prose, plots


def _pairs(counts: dict[tuple[int, str, str], int]) -> pd.DataFrame:
    """One row per pair: `counts` maps (seed, query id, region) to the query's number of pairs."""
    return pd.DataFrame([{"seed": seed, "id": query, "region": region}
                         for (seed, query, region), n in counts.items() for _ in range(n)])


def test_seed_range_says_how_a_share_varies_over_seeds():
    assert prose.seed_range_phrase([54.93, 58.07, 57.0], "each knows a different amount") == (
        "(mean over 3 seeds; from 54.9% to 58.1%: each knows a different amount)")
    assert prose.seed_range_phrase([100.0, 100.0], "each knows a different amount") == "(the same on all 2 seeds)"
    assert prose.seed_range_phrase([50.0], "each knows a different amount") == "(one seed)"


def test_pair_balance_says_which_way_the_pairs_lean():
    refusing = _pairs({(0, "a", "beyond-intrinsic"): 4, (0, "b", "beyond-extrinsic"): 2, (0, "c", "inside"): 2,
                       (1, "a", "beyond-intrinsic"): 3, (1, "c", "inside"): 1})
    assert prose.pair_balance_phrase(refusing) == (
        "The pairs lean towards refusal: 75.0% of them choose a refusal; a query beyond the boundary that the "
        "model did not always refuse gave 3.0 pairs on average, a query inside it 1.5")
    answering = _pairs({(0, "a", "beyond-intrinsic"): 1, (0, "c", "inside"): 3})
    assert prose.pair_balance_phrase(answering).startswith("The pairs lean towards answering: 25.0%")
    even = _pairs({(0, "a", "beyond-intrinsic"): 2, (0, "c", "inside"): 2})
    assert prose.pair_balance_phrase(even).startswith("The pairs are about balanced between refusing and answering")


def test_pair_balance_without_one_side_leaves_the_counts_out():
    only_beyond = _pairs({(0, "a", "beyond-extrinsic"): 2})
    assert prose.pair_balance_phrase(only_beyond) == "The pairs lean towards refusal: 100.0% of them choose a refusal"


def test_propensity_phrase_names_the_common_value_and_what_it_does():
    mostly_once = [0.1] * 8 + [0.0, 0.3]
    assert prose.propensity_phrase(mostly_once, 10) == (
        "80% of the pairs have the same policy propensity, 0.1 (their rejected response was given by one of the "
        "IDK-IT model's 10 samples): for them the product (label × policy) lies between 0 and 0.1 and orders "
        "them as the label certainty does")
    twice = prose.propensity_phrase([0.4] * 3 + [0.2], 5)
    assert twice.startswith("75% of the pairs have the same policy propensity, 0.4 (their rejected response was "
                            "given by 2 of the IDK-IT model's 5 samples)")
    never = prose.propensity_phrase([0.0] * 3 + [0.2], 5)
    assert "a refusal that none of the IDK-IT model's 5 samples gave" in never
    assert never.endswith("for them the product (label × policy) is 0, whatever the label certainty")
    third = prose.propensity_phrase([1 / 3] * 3, 3)
    assert third.startswith("100% of the pairs have the same policy propensity, 0.33 (")
    assert third.endswith("lies between 0 and 0.33 and orders them as the label certainty does")
    spread = prose.propensity_phrase([0.2, 0.2, 0.4, 0.6, 0.8], 5)
    assert spread.startswith("40% of the pairs") and "can order the pairs differently" in spread


def _selection(chosen_steps: dict[str, int], last: int = 150) -> pd.DataFrame:
    """Two candidates per method scored at steps 50, 100 and `last`; the first's `chosen_steps` selected."""
    rows = [{"method": m, "candidate": c, "step": step, "selected": c == "a" and step == chosen}
            for m, chosen in chosen_steps.items() for c in ("a", "b") for step in (50, 100, last)]
    return pd.DataFrame(rows)


NAMES = {"IDK-IT": "IDK-IT", "IDK-IT + DPO": "vanilla DPO", "control": "the control"}


def test_last_checkpoint_phrase_names_the_methods_at_the_end_of_their_schedules():
    some = _selection({"IDK-IT": 150, "IDK-IT + DPO": 150, "control": 100})
    assert prose.last_checkpoint_phrase(some, NAMES) == (
        "IDK-IT and vanilla DPO chose the last checkpoint of their schedules and the control an earlier one: a "
        "longer schedule might have scored higher for them")
    one = _selection({"IDK-IT": 50, "IDK-IT + DPO": 150, "control": 100})
    assert prose.last_checkpoint_phrase(one, NAMES) == (
        "vanilla DPO chose the last checkpoint of its schedule and IDK-IT and the control an earlier one: a "
        "longer schedule might have scored higher for it")
    assert prose.last_checkpoint_phrase(_selection(dict.fromkeys(NAMES, 150)), NAMES).startswith(
        "every method chose the last checkpoint")
    assert prose.last_checkpoint_phrase(_selection(dict.fromkeys(NAMES, 100)), NAMES).startswith(
        "no method chose the last checkpoint")


def test_last_checkpoint_phrase_reads_each_methods_own_schedule():
    """A preference stage's last checkpoint is its own (150), not IDK-IT's longer schedule (300)."""
    selection = pd.concat([_selection({"IDK-IT": 300}, last=300), _selection({"IDK-IT + DPO": 150})])
    assert prose.last_checkpoint_phrase(selection, {"IDK-IT": "IDK-IT", "IDK-IT + DPO": "vanilla DPO"}).startswith(
        "every method chose")


def test_last_checkpoint_phrase_needs_every_named_methods_choice():
    with pytest.raises(ValueError, match="no chosen checkpoint for 'control'"):
        prose.last_checkpoint_phrase(_selection({"IDK-IT": 150}), {"IDK-IT": "IDK-IT", "control": "the control"})


def test_captions_name_each_querys_region_when_given():
    captions = plots.response_captions(["what colour?", "what city?"], [["red"], []],
                                       {"base": ["red", "Rome"], "InBoL": ["red", "I don't know"]},
                                       regions=["inside", "beyond-extrinsic"])
    assert captions[0] == "region: inside\nwhat colour? [gold: red]\nbase: red\nInBoL: red"
    assert captions[1].startswith("region: beyond-extrinsic\nwhat city? [gold: refuse]\n")
    assert plots.response_captions(["q"], [["a"]], {"base": ["a"]}) == ["q [gold: a]\nbase: a"]
