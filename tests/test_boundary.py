"""Confidence probes, boundary placement, and the IDK-IT and preference sets built from them."""
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from inbol_utils import answers, confidence, generation, idk_data, protocol
from worlds import small_config


def test_sampled_confidence_converges_to_likelihood(processor, trained_tiny, tiny_world):
    """With T=1 and no top-k, the share of correct samples estimates p(gold) without bias: the
    gap shrinks like 1/sqrt(N). Gold here is the model's own greedy answer (so p is not tiny)."""
    model, _ = trained_tiny
    rows = tiny_world[0]["test"].select(range(24))
    greedy = generation.greedy_answers(model, processor, list(rows["image"]), rows["question"])
    keep = [i for i, g in enumerate(greedy) if g][:8]  # an empty answer is never scored correct
    rows = rows.select(keep)
    images, questions = list(rows["image"]), rows["question"]
    gold = [[greedy[i]] for i in keep]
    p = np.array(generation.answer_probability(model, processor, images, questions, gold))
    assert ((p > 0.05) & (p < 0.999)).any()
    samples = generation.generate_answers(model, processor, images, questions, num_samples=400,
                                          temperature=1.0, seed=1)
    frame = pd.DataFrame({"samples": samples, "answers": gold})
    small = confidence.sampled_confidence(frame, 10).to_numpy()
    large = confidence.sampled_confidence(frame, 400).to_numpy()
    bound = 4.5 * np.sqrt(p * (1 - p) / 400) + 0.01
    assert (np.abs(large - p) <= bound).all(), (large, p)
    assert np.abs(large - p).mean() < np.abs(small - p).mean() + 0.02


def test_the_probe_keeps_only_the_samples_that_label_the_data(tmp_path, trained_tiny):
    """Chapter 1's N sweep draws max(n_values) samples on the first seed, but the saved probe
    keeps the `n_samples` that label the data: the base-sampled pairs and chapter 5's label sets
    then read as many samples on every seed (they once read 20 on seed 0 and 10 on the others)."""
    _, model_path = trained_tiny
    protocol.build_world(tmp_path, 0, small_config(seed=3, n_probe=16))
    home = protocol.seed_dir(tmp_path, 0)
    shutil.copytree(model_path, home / "base_model")
    table = protocol.probe_seed(str(tmp_path), 0, 2, [1, 2, 4], 1.0, 8)
    saved = pd.read_parquet(home / "boundary.parquet")
    assert (table["samples"].map(len) == 2).all() and (saved["samples"].map(len) == 2).all()
    assert {"sampled_conf_1", "sampled_conf_2", "sampled_conf_4"} <= set(saved.columns)
    assert saved["sampled_conf"].equals(saved["sampled_conf_2"])
    assert not saved["sampled_conf_4"].map(lambda c: (c * 2) % 1 == 0).all()  # 4 draws, not the kept 2


def test_correct_fraction_counts_an_array_of_one_empty_answer_as_one_sample():
    """Samples read back from parquet are arrays: one empty answer is a (wrong) sample, not none."""
    assert confidence.correct_fraction(np.array([""]), ["red"]) == 0.0
    assert confidence.correct_fraction(np.array(["red", "blue"]), ["red"]) == 0.5
    with pytest.raises(ValueError, match="at least one sample"):
        confidence.correct_fraction(np.array([], dtype=str), ["red"])


def test_place_regions_by_hand():
    frame = pd.DataFrame({"answerable": [True, True, True, False, False]})
    conf = pd.Series([0.9, 0.5, 0.49, 0.0, 1.0])
    assert confidence.place(frame, conf, 0.5).tolist() == [
        "inside", "inside", "beyond-intrinsic", "beyond-extrinsic", "beyond-extrinsic"]
    assert confidence.place(frame, conf, 0.0).tolist()[:3] == ["inside"] * 3
    assert confidence.place(frame, conf, 1.0).tolist()[:3] == ["beyond-intrinsic"] * 3
    with pytest.raises(ValueError, match="tau"):
        confidence.place(frame, conf, 1.5)


def test_labelled_takes_the_named_signal_and_leaves_the_probe_as_it_was():
    probe = pd.DataFrame({"answerable": [True, True, False], "sampled_conf": [0.9, 0.2, 0.9],
                          "likelihood_conf": [0.1, 0.8, 0.9]})
    by_likelihood = confidence.labelled(probe, "likelihood_conf", 0.5)
    assert by_likelihood["confidence"].tolist() == [0.1, 0.8, 0.9]
    assert by_likelihood["region"].tolist() == ["beyond-intrinsic", "inside", "beyond-extrinsic"]
    assert confidence.labelled(probe, "sampled_conf", 0.5)["region"].tolist()[:2] == ["inside", "beyond-intrinsic"]
    assert list(probe.columns) == ["answerable", "sampled_conf", "likelihood_conf"]


def test_threshold_sweep_by_hand():
    """Four answerable queries, the greedy answer right on the two most confident, and one
    unanswerable: at tau 0.5 the labels follow the greedy answers exactly; at 0 every answerable
    query is inside and at 1 none is, and either way half of them disagree."""
    frame = pd.DataFrame({"answerable": [True, True, True, True, False],
                          "greedy_correct": [True, True, False, False, False]})
    sampled = pd.Series([0.9, 0.6, 0.4, 0.1, 0.0])
    sweep = confidence.threshold_sweep(frame, {3: sampled, "likelihood": pd.Series([0.7] * 5)}, taus=[0.0, 0.5, 1.0])
    rows = sweep.set_index(["N", "tau"])
    assert rows["share labelled beyond-intrinsic"].to_dict() == {
        ("3", 0.0): 0.0, ("3", 0.5): 0.4, ("3", 1.0): 0.8,
        ("likelihood", 0.0): 0.0, ("likelihood", 0.5): 0.0, ("likelihood", 1.0): 0.8}
    assert rows["agreement with greedy correctness"].to_dict() == {
        ("3", 0.0): 0.5, ("3", 0.5): 1.0, ("3", 1.0): 0.5,
        ("likelihood", 0.0): 0.5, ("likelihood", 0.5): 0.5, ("likelihood", 1.0): 0.5}
    assert confidence.greedy_agreement(frame, confidence.place(frame, sampled, 0.5)) == 1.0


def test_probe_summary_by_hand():
    """One shown fact and two never shown: sampled confidence ranks the shown one above one of
    them (AUROC 0.5), the likelihood above both (1.0). A source without facts has no AUROC."""
    probe = pd.DataFrame({
        "answerable": [True, True, True, True, False],
        "family": ["knowledge", "knowledge", "knowledge", "perception", "unanswerable"],
        "exposure": [30, 0, 0, 0, 0],
        "sampled_conf": [0.1, 0.0, 0.2, 0.5, 0.0],
        "likelihood_conf": [0.9, 0.1, 0.05, 0.6, 0.0],
        "region": ["inside", "beyond-intrinsic", "beyond-intrinsic", "inside", "beyond-extrinsic"],
    })
    assert confidence.probe_summary(probe) == pytest.approx({
        "beyond-intrinsic share": 0.4, "AUROC sampled (fact shown)": 0.5, "AUROC likelihood (fact shown)": 1.0,
        "mean likelihood conf (answerable)": (0.9 + 0.1 + 0.05 + 0.6) / 4})
    no_facts = confidence.probe_summary(probe[probe["family"] != "knowledge"])
    assert math.isnan(no_facts["AUROC sampled (fact shown)"]) and math.isnan(no_facts["AUROC likelihood (fact shown)"])


def hand_table() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["p-0", "p-1", "p-2", "p-3", "p-4"],
        "question": ["q0", "q1", "q2", "q3", "q4"],
        "answers": [["red"], ["velmora"], ["3"], [], ["circle"]],
        "family": ["perception", "knowledge", "perception", "unanswerable", "perception"],
        "region_truth": ["inside", "beyond-intrinsic", "inside", "beyond-extrinsic", "inside"],
        "region": ["inside", "beyond-intrinsic", "inside", "beyond-extrinsic", "beyond-intrinsic"],
        "confidence": [0.9, 0.1, 1.0, 0.0, 0.3],
        "samples": [["red", "blue", "red"], ["tarsk", "tarsk", "velmora"], ["3", "3", "3"],
                    ["green", "green", "red"], ["circle", "square", "square"]],
        "greedy": ["red", "tarsk", "3", "green", "square"],
    })


def test_idk_rows_answer_inside_and_refuse_beyond():
    rows = idk_data.idk_instruction_rows(hand_table(), seed=0)
    for response, region, gold in zip(rows["response"], rows["region"], rows["answers"]):
        if region == "inside":
            assert response == gold[0]
        else:
            assert answers.is_refusal(response) and response in answers.REFUSAL_RESPONSES
    only_intrinsic = idk_data.idk_instruction_rows(hand_table(), {"beyond-extrinsic": 0.0}, seed=0)
    assert "beyond-extrinsic" not in set(only_intrinsic["region"]) and len(only_intrinsic) == 4
    with pytest.raises(ValueError, match="region_mix"):
        idk_data.idk_instruction_rows(hand_table(), {"outside": 1.0})


def test_preference_pairs_from_own_samples():
    """Inside: the correct answer over a refusal and over each distinct wrong answer. Beyond:
    a refusal over each distinct response that is not a clean refusal. The propensity is the
    share of the samples of the rejected kind."""
    pairs = idk_data.preference_rows(hand_table(), seed=0)
    by_id = {i: group for i, group in pairs.groupby("id")}
    p0 = by_id["p-0"]  # inside; samples red, blue, red
    assert set(p0["chosen"]) == {"red"} and len(p0) == 2
    assert answers.is_refusal(p0["rejected"].iloc[0]) and p0["propensity"].iloc[0] == 0.0
    assert p0["rejected"].iloc[1] == "blue" and p0["propensity"].iloc[1] == pytest.approx(1 / 3)
    p2 = by_id["p-2"]  # inside, never wrong: only the refusal is rejected (over-refusal)
    assert len(p2) == 1 and answers.is_refusal(p2["rejected"].item())
    p1 = by_id["p-1"]  # beyond-intrinsic: tarsk (2 of 3) and velmora (right by luck, 1 of 3)
    assert all(answers.is_refusal(c) for c in p1["chosen"])
    assert dict(zip(p1["rejected"], p1["propensity"])) == pytest.approx({"tarsk": 2 / 3, "velmora": 1 / 3})
    assert list(by_id["p-3"]["rejected"]) == ["green", "red"]
    p4 = by_id["p-4"]  # labelled beyond although the probe knew circles: its own samples rule
    assert dict(zip(p4["rejected"], p4["propensity"])) == pytest.approx({"circle": 1 / 3, "square": 2 / 3})
    assert (pairs["chosen"] != pairs["rejected"]).all()
    assert pairs.groupby("id")["confidence"].first().tolist() == [0.9, 0.1, 1.0, 0.0, 0.3]


def test_preference_pairs_when_the_model_said_nothing_or_only_refused():
    """Beyond the boundary, an empty answer is still the model's (wrong) answer to reject, and
    a hybrid is rejected like any answer; a model that only refused leaves nothing to reject,
    so the query gets no pair. The chosen refusal is the model's own most frequent phrasing."""
    extra = pd.DataFrame({
        "id": ["p-5", "p-6", "p-7"], "question": ["q5", "q6", "q7"], "answers": [[], [], []],
        "family": ["unanswerable"] * 3, "region_truth": ["beyond-extrinsic"] * 3,
        "region": ["beyond-extrinsic"] * 3, "confidence": [0.0] * 3,
        "samples": [["", "", ""], ["i don't know"] * 3, ["i am not sure", "red i don't know", "i am not sure"]],
        "greedy": ["", "i am not sure", "i am not sure"],
    })
    pairs = idk_data.preference_rows(pd.concat([hand_table(), extra], ignore_index=True), seed=0)
    p5 = pairs[pairs["id"] == "p-5"]
    assert p5["rejected"].tolist() == [""] and p5["propensity"].item() == 1.0
    assert "p-6" not in set(pairs["id"])
    p7 = pairs[pairs["id"] == "p-7"]
    assert p7[["chosen", "rejected"]].values.tolist() == [["i am not sure", "red i don't know"]]


def test_a_mix_that_keeps_nothing_or_pairs_that_prefer_nothing_stop_with_a_message():
    """Not an empty training set that fails later, deep in `datasets` (an IndexError)."""
    beyond_only = hand_table()[lambda t: t["region"] != "inside"]
    with pytest.raises(ValueError, match=r"keeps none of the 3 labelled queries \(by region: "
                                         r"\{'beyond-intrinsic': 2, 'beyond-extrinsic': 1\}\)"):
        idk_data.idk_instruction_rows(beyond_only, {"beyond-intrinsic": 0.0, "beyond-extrinsic": 0.0})
    refused = beyond_only.assign(samples=[["i don't know"] * 3] * 3)
    with pytest.raises(ValueError, match="none of the 3 kept queries gives a preference pair"):
        idk_data.preference_rows(refused, seed=0)


def test_data_generation_is_deterministic():
    a = idk_data.preference_rows(hand_table(), seed=3)
    b = idk_data.preference_rows(hand_table(), seed=3)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(idk_data.idk_instruction_rows(hand_table(), seed=3),
                                  idk_data.idk_instruction_rows(hand_table(), seed=3))


def test_each_pair_carries_its_own_querys_image(tiny_world):
    """Pairs repeat a query and come in any order; each must hold that query's image, pixel for
    pixel (to_dataset copies the stored PNG bytes instead of decoding and encoding them)."""
    images = tiny_world[0]["probe"].select(range(5))
    table = hand_table().assign(id=list(reversed(images["id"])))
    rows = idk_data.preference_rows(table, seed=0)
    ds = idk_data.to_dataset(rows, images, idk_data.PREFERENCE_FEATURES)
    assert len(ds) == len(rows) > len(table) and ds["id"][:] == rows["id"].tolist()
    position = {i: k for k, i in enumerate(images["id"])}
    for pair in ds:
        source = images[position[pair["id"]]]["image"]
        assert np.array_equal(np.asarray(pair["image"]), np.asarray(source)), pair["id"]


def test_malformed_row_names_row_and_field(tiny_world):
    images = tiny_world[0]["probe"].select(range(5))
    table = hand_table().assign(id=images["id"])
    ds = idk_data.to_dataset(idk_data.preference_rows(table, seed=0), images, idk_data.PREFERENCE_FEATURES)
    idk_data.validate(ds, idk_data.PREFERENCE_FEATURES, "preference set")
    broken = ds.map(lambda r, i: {"rejected": r["chosen"] if i == 2 else r["rejected"]}, with_indices=True)
    with pytest.raises(ValueError, match=r"row 2 .*'chosen' and 'rejected'"):
        idk_data.validate(broken, idk_data.PREFERENCE_FEATURES, "preference set")
    broken = ds.map(lambda r, i: {"confidence": 3.0 if i == 1 else r["confidence"]}, with_indices=True)
    with pytest.raises(ValueError, match=r"row 1 .*'confidence'"):
        idk_data.validate(broken, idk_data.PREFERENCE_FEATURES, "preference set")
    with pytest.raises(ValueError, match="missing columns"):
        idk_data.validate(ds.remove_columns("rejected"), idk_data.PREFERENCE_FEATURES, "preference set")


def test_every_refusal_phrasing_is_detected():
    assert len(set(answers.REFUSAL_RESPONSES)) >= 8
    assert all(answers.is_refusal(r) for r in answers.REFUSAL_RESPONSES)


def test_benchmark_measures_roofline_and_confidence_costs(trained_tiny, tiny_world, tmp_path):
    """`make bench` on a tiny study: FLOPs counted, rates below the measured matmul peak's
    plausible range, the figures written to bench.json, and a clear stop without a model."""
    from inbol_utils.tools import bench
    from inbol_utils import world

    _, model_path = trained_tiny
    world.save_world(*tiny_world, tmp_path / "seed0" / "world")
    (tmp_path / "seed0" / "base_model").symlink_to(model_path)
    report = bench.main(["--artifacts", str(tmp_path), "--queries", "12", "--single", "3", "--repeats", "2"])
    costs, line = report["confidence"], report["roofline"]
    assert all(costs[k] > 0 for k in ("single", "batched", "likelihood", "batched, plain", "batching speed-up",
                                       "likelihood saving", "likelihood saving, plain"))
    assert line["matmul_gflop_per_s"]["float32"] > 0
    step = line["work"]["training step"]
    # fwd + bwd of a transformer: at least 4 FLOPs per trainable weight and token (2 forward, 2 for
    # the input gradients; the frozen tower adds none), and no rate above 3x the measured peak
    text_weights = sum(p.numel() for n, p in trained_tiny[0].named_parameters() if "language_model.layers" in n)
    assert step["gflop"] * 1e9 >= 4 * text_weights * line["tokens_per_step"]
    assert all(0 < row["fraction_of_fp32_matmul"] < 3 for row in line["work"].values())
    assert 0 < line["training_step_matmul_share"] < 1
    assert json.loads((tmp_path / "bench.json").read_text())["roofline"] == line
    with pytest.raises(SystemExit, match="exceeds"):
        bench.main(["--artifacts", str(tmp_path), "--queries", "100000"])
    with pytest.raises(SystemExit, match="No model"):
        bench.main(["--artifacts", str(tmp_path / "nothing")])


def test_sampling_error_matches_simulated_binomial_noise():
    """The noise floor that chapter 1 compares sampled with likelihood confidence against."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 400)
    simulated = np.abs(rng.binomial(10, p[:, None], (400, 2000)) / 10 - p[:, None]).mean()
    assert confidence.sampling_error(p, 10) == pytest.approx(simulated, rel=0.02)
    assert confidence.sampling_error([0.0, 1.0], 5) == 0.0  # certain answers: no noise
    assert confidence.sampling_error([0.5], 1) == 0.5
