"""Scoring, summarising and comparing: the numbers of chapter 4 from scored frames, by hand."""
import math

import pandas as pd
import pytest

from inbol_utils import evaluation, metrics
from inbol_utils.methods import BASE, COMPARISONS, CONTROL, DPO, IDKIT, INBOL, REGISTRY


def test_summary_by_hand(ten_queries):
    out = evaluation.summary(ten_queries)
    assert out["n"] == 10
    assert out["acc"] == pytest.approx(0.4)
    assert out["refr"] == pytest.approx(0.4)
    assert out["err"] == pytest.approx(0.2)
    assert out["trust"] == pytest.approx(0.2)
    assert out["trust_c0"] == pytest.approx(0.4)
    assert out["trust_c0.5"] == pytest.approx(0.3)
    assert out["trust_c1"] == pytest.approx(0.2)
    assert out["trust_c2"] == pytest.approx(0.0)
    assert out["trust_c4"] == pytest.approx(-0.4)
    assert out["answerable_acc"] == pytest.approx(4 / 7)
    assert out["over_refusal"] == pytest.approx(1 / 4)  # the inside rows
    assert out["unanswerable_refr"] == pytest.approx(2 / 3)
    assert out["beyond_intrinsic_refr"] == pytest.approx(1 / 3)
    # known = inside the world's boundaries: 4 right answers + 3 refusals of what lies beyond
    assert out["truthful"] == pytest.approx(0.7)
    assert not {"known_acc", "known_refr", "truthful_known"} & set(out)  # no base_known column


def test_summary_against_the_base_models_knowledge(ten_queries):
    """`base_known` adds accuracy and refusal on the queries the base model knew, beside the
    world's over-refusal, which stays measured on the inside rows."""
    df = ten_queries
    df["base_known"] = [True, True, False, False, True, True, False, False, False, False]
    # base_known rows: correct, correct, correct, refusal
    out = evaluation.summary(df)
    assert out["known_refr"] == pytest.approx(1 / 4) and out["known_acc"] == pytest.approx(3 / 4)
    assert out["over_refusal"] == pytest.approx(1 / 4)
    # 4 right answers, 3 refusals of what the base model did not know (rows 3, 7, 8; row 5 it knew)
    assert out["truthful_known"] == pytest.approx(0.7)
    df["base_known"] = [False, False, False, True, False, True, False, False, False, False]
    out = evaluation.summary(df)
    assert out["known_refr"] == pytest.approx(1.0)
    assert out["truthful_known"] == pytest.approx(0.6) and out["truthful"] == pytest.approx(0.7)  # rows 3, 5 known


def test_summary_keys_come_in_the_results_tables_order(ten_queries):
    out = evaluation.summary(ten_queries.assign(base_known=True), c_values=(0, 2))
    assert list(out) == ["acc", "refr", "err", "hybrid", "n", "trust", "trust_c0", "trust_c2", "answerable_acc",
                         "over_refusal", "known_acc", "known_refr", "unanswerable_refr", "beyond_intrinsic_refr",
                         "truthful", "truthful_known"]


def test_summary_empty_subset_is_nan(ten_queries):
    df = ten_queries[ten_queries["region_truth"] != "beyond-extrinsic"]
    assert math.isnan(evaluation.summary(df)["unanswerable_refr"])


def test_majority():
    assert evaluation.majority(["Red", "red", "blue", "the red"]) == ("red", 0.75)


def test_heldout_refusal_by_hand():
    """Per method and seed: only in-domain queries beyond a boundary count, split by kind."""
    rows = [  # method, seed, split, region_truth, family, heldout, response_type
        ("m", 0, "test", "beyond-extrinsic", "unanswerable", True, "refusal"),
        ("m", 0, "test", "beyond-extrinsic", "unanswerable", True, "wrong"),
        ("m", 0, "test", "beyond-intrinsic", "knowledge", False, "refusal"),
        ("m", 0, "test", "inside", "knowledge", False, "refusal"),        # inside: not counted
        ("m", 0, "ood", "beyond-extrinsic", "unanswerable", True, "wrong"),  # OOD: not counted
        ("m", 1, "test", "beyond-extrinsic", "unanswerable", True, "refusal"),
    ]
    frame = pd.DataFrame(rows, columns=["method", "seed", "split", "region_truth", "family", "heldout",
                                        "response_type"])
    out = evaluation.heldout_refusal(frame).set_index(["seed", "kind", "heldout"])
    assert out.loc[(0, "construction", True), "refusal_rate"] == 0.5
    assert out.loc[(0, "construction", True), "n"] == 2
    assert out.loc[(0, "unseen fact", False), "refusal_rate"] == 1.0
    assert out.loc[(1, "construction", True), "refusal_rate"] == 1.0
    assert len(out) == 3


def test_inside_refusals_by_hand():
    """Only in-domain queries inside the boundaries count; refusals and hybrids apart."""
    rows = [  # split, region_truth, qtype, response, response_type
        ("test", "inside", "shape", "triangle not sure about that", "hybrid"),
        ("test", "inside", "shape", "i am not sure", "refusal"),
        ("test", "inside", "shape", "circle", "correct"),
        ("test", "inside", "shape", "", "wrong"),
        ("test", "inside", "color", "red", "correct"),
        ("test", "beyond-extrinsic", "color", "i am not sure", "refusal"),  # beyond: not counted
        ("ood", "inside", "color", "i don't know", "refusal"),              # OOD: not counted
    ]
    frame = pd.DataFrame(rows, columns=["split", "region_truth", "qtype", "response", "response_type"])
    out = evaluation.inside_refusals(frame.assign(method="m", seed=0)).set_index("qtype")
    assert out.loc["shape", "refused"] == 0.25 and out.loc["shape", "hybrid"] == 0.25
    assert out.loc["color", "refused"] == 0.0 and out.loc["color", "hybrid"] == 0.0
    overall = evaluation.inside_refusals(frame.assign(method="m", seed=0), by=["method"])
    assert overall["refused"].item() == 0.2


def test_share_by_counts_one_response_type_per_group():
    frame = pd.DataFrame({"seed": [0, 0, 1, 1, 1], "response_type": ["correct", "refusal", "correct", "correct", "wrong"]})
    assert evaluation.share_by(frame, "seed").to_dict() == {0: 0.5, 1: pytest.approx(2 / 3)}
    assert evaluation.share_by(frame, "seed", "refusal").to_dict() == {0: 0.5, 1: 0.0}


def runs_with_trust(trust: dict[str, list[float]]) -> pd.DataFrame:
    """Per-seed runs of every method on both test splits, with the given Trust per seed."""
    return pd.DataFrame([{"method": m, "seed": s, "split": split, "trust": t}
                         for m, values in trust.items() for s, t in enumerate(values)
                         for split in evaluation.TEST_SPLITS])


def test_comparisons_follow_the_registry_and_name_the_verdicts():
    trust = {BASE: [0.1, 0.12, 0.11], IDKIT: [0.3, 0.31, 0.29], DPO: [0.3, 0.33, 0.28],
             INBOL: [0.4, 0.42, 0.41], CONTROL: [0.5, 0.52, 0.51]}
    table = evaluation.comparisons(runs_with_trust(trust), ["trust"])
    expected = {("trust", REGISTRY[m].label, rival, split) for m, rivals in COMPARISONS.items() for rival in rivals
                for split in evaluation.TEST_SPLITS}
    assert set(zip(table["metric"], table["method"], table["rival"], table["split"])) == expected
    verdicts = table.set_index(["method", "rival", "split"])["verdict"]
    assert verdicts[("InBoL", BASE, "test")] == "beats" and verdicts[("InBoL", CONTROL, "ood")] == "trails"
    assert verdicts[("DPO", IDKIT, "test")] == "is level with"  # +0, +0.02, -0.01
    assert evaluation.claim_holds(table, INBOL, BASE) and evaluation.claim_holds(table, INBOL, IDKIT)
    assert not evaluation.claim_holds(table, INBOL, CONTROL) and not evaluation.claim_holds(table, DPO, IDKIT)
    with pytest.raises(ValueError, match="COMPARISONS"):
        evaluation.claim_holds(table, DPO, BASE)


def test_a_claim_needs_every_split():
    """InBoL beats IDK-IT in domain but not out of it: the paper's claim does not hold."""
    runs = runs_with_trust({m: [0.2, 0.2, 0.2] for m in (BASE, IDKIT, DPO, CONTROL)} | {INBOL: [0.3, 0.31, 0.32]})
    runs.loc[(runs["method"] == INBOL) & (runs["split"] == "ood"), "trust"] = [0.1, 0.2, 0.3]
    table = evaluation.comparisons(runs, ["trust"])
    assert not evaluation.claim_holds(table, INBOL, IDKIT)
    assert evaluation.claim_verdicts(table, INBOL, IDKIT).to_dict() == {"test": "beats", "ood": "is level with"}
    assert (INBOL, IDKIT) in evaluation.PAPER_CLAIMS


def test_no_claim_holds_on_fewer_than_three_seeds():
    """InBoL far ahead of every rival on two seeds that agree: no verdict, so no claim holds;
    a third seed like them makes both claims hold."""
    trust = {m: [0.2, 0.2, 0.2] for m in (BASE, IDKIT, DPO, CONTROL)} | {INBOL: [0.5, 0.5, 0.5]}
    two = evaluation.comparisons(runs_with_trust({m: values[:2] for m, values in trust.items()}), ["trust"])
    assert set(two["verdict"]) == {metrics.TOO_FEW} and (two["n"] == 2).all()
    assert not any(evaluation.claim_holds(two, method, rival) for method, rival in evaluation.PAPER_CLAIMS)
    three = evaluation.comparisons(runs_with_trust(trust), ["trust"])
    assert all(evaluation.claim_holds(three, method, rival) for method, rival in evaluation.PAPER_CLAIMS)


def test_every_compared_metric_gets_a_verdict_in_the_users_favour():
    """InBoL, against IDK-IT: level Trust, more helpful, less over-refusal, less refusal of
    unanswerable queries. Lower over-refusal beats; lower refusal of the unanswerable trails;
    the differences stay InBoL minus IDK-IT."""
    runs = runs_with_trust({m: [0.2, 0.21, 0.19] for m in (BASE, IDKIT, DPO, CONTROL, INBOL)})
    for metric, value in {"answerable_acc": 0.6, "over_refusal": 0.2, "unanswerable_refr": 0.8}.items():
        runs[metric] = value + runs["seed"] / 100
    inbol = runs["method"] == INBOL
    runs.loc[inbol, "answerable_acc"] += [0.05, 0.06, 0.05, 0.06, 0.05, 0.06]
    runs.loc[inbol, "over_refusal"] -= [0.03, 0.04, 0.03, 0.04, 0.03, 0.04]
    runs.loc[inbol, "unanswerable_refr"] -= [0.09, 0.1, 0.09, 0.1, 0.09, 0.1]
    table = evaluation.comparisons(runs)
    assert list(dict.fromkeys(table["metric"])) == list(evaluation.COMPARED)
    rows = table[(table["method"] == "InBoL") & (table["rival"] == IDKIT) & (table["split"] == "test")]
    found = rows.set_index("metric")[["diff", "verdict"]]
    assert found.loc["trust", "verdict"] == "is level with"
    assert found.loc["answerable_acc", "verdict"] == "beats"
    assert found.loc["over_refusal", "verdict"] == "beats" and found.loc["over_refusal", "diff"] < 0
    assert found.loc["unanswerable_refr", "verdict"] == "trails" and found.loc["unanswerable_refr", "diff"] < 0
    # the paper's claims read Trust alone, whatever the other metrics say
    assert not evaluation.claim_holds(table, INBOL, IDKIT)


def test_a_metric_the_source_cannot_measure_is_not_compared():
    """On a real source over-refusal is nan for every run: `measurable` leaves it out, and a
    nan that reached the comparison would be an error, not a verdict."""
    runs = runs_with_trust({m: [0.2, 0.21, 0.19] for m in (BASE, IDKIT, DPO, CONTROL, INBOL)})
    runs = runs.assign(answerable_acc=0.5, over_refusal=float("nan"), unanswerable_refr=0.7)
    measured = evaluation.measurable(evaluation.COMPARED, intrinsic_truth=False)
    assert set(evaluation.comparisons(runs, measured)["metric"]) == set(evaluation.COMPARED) - {"over_refusal"}
    with pytest.raises(ValueError, match="non-missing"):
        evaluation.comparisons(runs)


def test_disagreements_pick_queries_whose_response_type_differs():
    rows = [  # id, method, response, response_type
        ("q1", BASE, "red", "correct"), ("q1", IDKIT, "red", "correct"), ("q1", INBOL, "red", "correct"),
        ("q2", BASE, "blue", "wrong"), ("q2", IDKIT, "blue", "wrong"), ("q2", INBOL, "i don't know", "refusal"),
        ("q3", BASE, "2", "correct"), ("q3", IDKIT, "i am not sure", "refusal"), ("q3", INBOL, "2", "correct"),
        ("q4", BASE, "3", "wrong"), ("q4", IDKIT, "i am not sure", "refusal"),
        ("q4", INBOL, "i don't know", "refusal"),  # same type as IDK-IT but not the base model's
    ]
    scored = pd.DataFrame(rows, columns=["id", "method", "response", "response_type"])
    shown = evaluation.disagreements(scored, INBOL, [BASE, IDKIT], n=10)
    assert list(shown.index) == ["q2", "q3", "q4"] and list(shown.columns) == [BASE, IDKIT, INBOL]
    assert shown.loc["q3", IDKIT] == "i am not sure"
    assert list(evaluation.disagreements(scored, INBOL, [BASE, IDKIT], n=2).index) == ["q2", "q3"]
    assert list(evaluation.disagreements(scored, INBOL, [IDKIT], n=10).index) == ["q2", "q3"]


def test_inside_refusal_rates_average_each_seeds_share():
    """Seed 0 refuses 1 of its 2 inside queries, seed 1 none of 4: the method's rate is the mean of
    the seeds' shares (0.25), not the pooled share (1/6); methods come in the order asked for."""
    rows = [(0, "refusal"), (0, "correct"), (1, "correct"), (1, "correct"), (1, "hybrid"), (1, "wrong")]
    frame = pd.DataFrame(rows, columns=["seed", "response_type"]).assign(
        method=INBOL, split="test", region_truth="inside", qtype="shape")
    rates = evaluation.inside_refusal_rates(frame, [IDKIT, INBOL])
    assert list(rates.index) == [IDKIT, INBOL] and rates.loc[IDKIT].isna().all()
    assert rates.loc[INBOL, "refused"] == pytest.approx(0.25) and rates.loc[INBOL, "hybrid"] == pytest.approx(0.125)


def test_region_composition_is_each_methods_shares_per_region_with_queries(ten_queries):
    scored = pd.concat([ten_queries.assign(method=BASE), ten_queries.iloc[:4].assign(method=INBOL)])
    shares = evaluation.region_composition(scored, [INBOL, BASE]).set_index(["method", "region"])
    assert list(shares.index) == [(INBOL, "inside"), (BASE, "inside"), (BASE, "beyond-intrinsic"),
                                  (BASE, "beyond-extrinsic")]  # InBoL has no queries beyond: no rows
    assert shares.loc[(INBOL, "inside"), "correct"] == 0.75 and shares.loc[(INBOL, "inside"), "refusal"] == 0.25
    assert shares.loc[(BASE, "beyond-extrinsic"), "refusal"] == pytest.approx(2 / 3)
    assert "n" not in shares


def test_heldout_table_says_seen_or_held_out_and_its_spread_has_every_cell():
    rows = [  # method, seed, family, heldout, response_type (all in-domain, beyond-extrinsic)
        (INBOL, 0, True, "refusal"), (INBOL, 0, True, "wrong"), (INBOL, 1, True, "refusal"),
        (INBOL, 0, False, "refusal"), (INBOL, 1, False, "refusal"), (BASE, 0, True, "wrong")]
    frame = pd.DataFrame(rows, columns=["method", "seed", "heldout", "response_type"]).assign(
        split="test", region_truth="beyond-extrinsic", family="unanswerable")
    held = evaluation.heldout_refusal_table(frame, [INBOL])
    assert set(held["method"]) == {INBOL}  # the base model was not asked for
    assert dict(zip(held["heldout"], held[evaluation.SEEN])) == {True: "held out", False: "seen"}
    spread = evaluation.heldout_spread(held)
    assert len(spread) == 8 and spread.loc[(IDKIT, "construction", "seen")].isna().all()
    held_out = spread.loc[(INBOL, "construction", "held out")]
    assert held_out["mean"] == 0.75 and held_out["std"] == pytest.approx(0.5 ** 0.5 / 2)  # seeds: 0.5 and 1.0
    assert spread.loc[(INBOL, "construction", "seen"), "mean"] == 1.0
    assert spread.loc[(INBOL, "unseen fact", "seen")].isna().all()


def test_trust_by_c_has_one_row_per_run_and_cost():
    runs = pd.DataFrame([
        {"method": INBOL, "seed": 0, "split": "test", "trust_c0": 0.6, "trust_c1": 0.4, "trust_c4": -0.2},
        {"method": BASE, "seed": 1, "split": "ood", "trust_c0": 0.7, "trust_c1": 0.1, "trust_c4": -1.7}])
    rows = evaluation.trust_by_c(runs, [0, 4])
    assert list(rows.columns) == ["method", "seed", "split", "c", "trust"]
    assert rows[["method", "c", "trust"]].values.tolist() == [[INBOL, 0, 0.6], [INBOL, 4, -0.2], [BASE, 0, 0.7],
                                                              [BASE, 4, -1.7]]


def test_write_tables_writes_each_csv_keeping_only_the_index_asked_for(tmp_path):
    frame = pd.DataFrame({"trust": [0.25, 0.5]}, index=pd.Index(["base", "InBoL"], name="method"))
    evaluation.write_tables(tmp_path / "results", {"kept.csv": frame, "plain.csv": frame}, indexed=["kept.csv"])
    assert (tmp_path / "results" / "kept.csv").read_text() == "method,trust\nbase,0.25\nInBoL,0.5\n"
    assert (tmp_path / "results" / "plain.csv").read_text() == "trust\n0.25\n0.5\n"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["kept.csv", "plain.csv"]  # no leftovers
