"""The label-noise study: label sets of known noise, their error rates, CA-DPO's weights on the
mislabelled pairs and the curve of CA-DPO minus DPO, each against a computation by hand."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from inbol_utils import dpo, label_noise
from inbol_utils.book import prose, readings
from inbol_utils.methods import DPO, INBOL

# Half B's four answerable queries and one unanswerable, and one half-A row that must be left out.
# Ground truth: q0, q1 inside; q2 a never-shown fact; q3 inside; u unanswerable.
PROBE = pd.DataFrame({
    "id": ["q0", "q1", "q2", "q3", "u", "a0"],
    "half": ["B", "B", "B", "B", "B", "A"],
    "answerable": [True, True, True, True, False, True],
    "answers": [["red"], ["blue"], ["rome"], ["two"], [], ["green"]],
    "region_truth": ["inside", "inside", "beyond-intrinsic", "inside", "beyond-extrinsic", "inside"],
    # base-model samples: the first two are all that N=2 reads
    "samples": [["red", "red", "red", "red"], ["no", "blue", "blue", "blue"], ["rome", "x", "x", "x"],
                ["no", "no", "two", "no"], ["a", "b", "c", "d"], ["green"] * 4],
    "likelihood_conf": [0.9, 0.8, 0.1, 0.2, 0.0, 0.9],
})


def labels(tau=0.5):
    """Chapter 2's labels: the sampled confidence of all four samples."""
    frame = PROBE.drop(columns=["samples"]).copy()
    frame["confidence"] = [1.0, 0.75, 0.25, 0.25, 0.0, 1.0]
    frame["region"] = np.where(~frame["answerable"], "beyond-extrinsic",
                               np.where(frame["confidence"] < tau, "beyond-intrinsic", "inside"))
    return frame


def test_label_sets_run_noisiest_first_and_end_with_the_likelihood():
    assert label_noise.label_sets([10, 2, 4, 2]) == ["N=2", "N=4", "N=10", "likelihood"]


def test_a_set_reads_the_first_n_samples_or_the_likelihood():
    assert label_noise.set_confidence(PROBE, "N=2").tolist() == [1.0, 0.5, 0.5, 0.0, 0.0, 1.0]
    assert label_noise.set_confidence(PROBE, "likelihood").tolist() == PROBE["likelihood_conf"].tolist()


def test_samples_read_back_from_parquet_count_an_empty_answer_as_a_sample():
    read_back = PROBE.assign(samples=PROBE["samples"].map(lambda s: np.array(["", *s[1:]])))
    assert label_noise.set_confidence(read_back, "N=1").tolist() == [0.0] * 6


def test_a_set_needing_more_samples_than_were_drawn_names_the_parameter():
    with pytest.raises(ValueError, match="noise_n_values.*n_samples"):
        label_noise.set_confidence(PROBE, "N=5")


def test_relabelling_touches_half_b_only_and_keeps_the_likelihood_label_beside():
    relabelled = label_noise.relabel(labels(), PROBE, "N=2", tau=0.5)
    assert relabelled["id"].tolist() == ["q0", "q1", "q2", "q3", "u"]
    assert relabelled["region"].tolist() == ["inside", "inside", "inside", "beyond-intrinsic", "beyond-extrinsic"]
    assert relabelled["likelihood_region"].tolist() == ["inside", "inside", "beyond-intrinsic", "beyond-intrinsic",
                                                        "beyond-extrinsic"]


def test_error_rates_count_answerable_queries_against_each_truth():
    errors = label_noise.error_rates(label_noise.relabel(labels(), PROBE, "N=2", tau=0.5)).set_index(
        ["truth", "region"])
    # Against the ground truth q2 (never shown, labelled inside) and q3 (inside, labelled beyond) are wrong.
    assert errors.loc[("ground truth", "all"), "error"] == 0.5
    assert errors.loc[("ground truth", "inside"), "error"] == pytest.approx(1 / 3)
    assert errors.loc[("ground truth", "beyond-intrinsic"), "error"] == 1.0
    assert errors.loc[("ground truth", "all"), "n"] == 4
    # Against the likelihood label only q2 is wrong (the likelihood too calls q3 unknown).
    assert errors.loc[("likelihood label", "all"), "error"] == 0.25
    assert errors.loc[("likelihood label", "beyond-intrinsic"), "error"] == 0.5


def test_only_a_set_with_chapter_twos_labels_is_the_main_tables_point():
    assert label_noise.is_chapter_two(label_noise.relabel(labels(), PROBE, "N=4", tau=0.5), labels())
    assert not label_noise.is_chapter_two(label_noise.relabel(labels(), PROBE, "N=2", tau=0.5), labels())


def test_pair_weights_are_trainings_weights():
    pairs = pd.DataFrame({"confidence": [0.5, 0.0, 1.0, 0.9], "propensity": [1.0, 1.0, 0.5, 0.2]})
    weights = label_noise.pair_weights(pairs, 0.5, {"ca_signal": "both"})
    certainty = np.array([0.0, 1.0, 0.5, 0.8 * 0.2])
    raw = dpo.WEIGHT_FLOOR + (1 - dpo.WEIGHT_FLOOR) * certainty
    assert weights.to_numpy() == pytest.approx(raw / raw.mean())
    assert weights.mean() == pytest.approx(1.0)


def weights_frame():
    """Two label sets over three seeds; against the ground truth wrong pairs weigh 0.5 on seed s
    and correct ones 1 + 0.1 s; one seed of N=4 has no wrong pair."""
    rows = []
    for seed in range(3):
        for name in ("N=2", "N=4"):
            for weight, region, truth in ((0.5, "inside", "beyond-intrinsic"), (1 + 0.1 * seed, "inside", "inside"),
                                          (1 + 0.1 * seed, "beyond-intrinsic", "beyond-intrinsic")):
                if name == "N=4" and seed == 2 and region != truth:
                    continue
                rows.append({"label_set": name, "seed": seed, "answerable": True, "region": region,
                             "region_truth": truth, "likelihood_region": region, "weight": weight})
        rows.append({"label_set": "N=2", "seed": seed, "answerable": False, "region": "beyond-extrinsic",
                     "region_truth": "beyond-extrinsic", "likelihood_region": "beyond-extrinsic", "weight": 9.0})
    return pd.DataFrame(rows)


def test_weight_gaps_pair_wrong_and_correct_pairs_seed_by_seed():
    gaps = label_noise.weight_gaps(label_noise.weights_by_label(weights_frame())).set_index(["label_set", "truth"])
    two = gaps.loc[("N=2", "ground truth")]
    diffs = np.array([0.5 - (1 + 0.1 * s) for s in range(3)])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert (two["wrong"], two["correct"]) == (pytest.approx(0.5), pytest.approx(1.1))  # the unanswerable pair is out
    assert (two["diff"], two["low"], two["high"]) == (pytest.approx(diffs.mean()), pytest.approx(diffs.mean() - half),
                                                      pytest.approx(diffs.mean() + half))
    assert gaps.loc[("N=4", "ground truth"), "n"] == 2  # the seed with no wrong pair has no difference
    assert ("N=2", "likelihood label") not in gaps.index  # no pair is wrong against it


def runs_frame(shift):
    """Per-run metrics of DPO and CA-DPO for three seeds: CA-DPO's Trust is DPO's plus shift[set] + 0.01 s."""
    rows = []
    for name in ("N=2", "likelihood"):
        for seed in range(3):
            for split in ("test", "ood"):
                base = {"label_set": name, "seed": seed, "split": split, "answerable_acc": 0.5, "unanswerable_refr": 0.9}
                rows.append({**base, "method": DPO, "trust": 0.2})
                rows.append({**base, "method": INBOL, "trust": 0.2 + shift[name] + 0.01 * seed})
    return pd.DataFrame(rows)


def errors_frame():
    """Error rates per seed: against the likelihood label N=2's are 0.1 + s/100 and the
    likelihood's 0; against the world's ground truth 0.2 + s/100 and 0.3 + s/100."""
    rows = []
    for name, against_likelihood, against_world in (("N=2", 0.1, 0.2), ("likelihood", 0.0, 0.3)):
        for seed in range(3):
            for truth, error in (("likelihood label", against_likelihood), ("ground truth", against_world)):
                rows.append({"label_set": name, "seed": seed, "truth": truth, "region": "all",
                             "error": error + seed / 100 if error else 0.0, "chapter_two": False})
    return pd.DataFrame(rows)


def test_curve_gives_each_sets_paired_difference_beside_its_mean_error():
    curve = label_noise.curve(errors_frame(), runs_frame({"N=2": 0.05, "likelihood": 0.0}))
    trust = curve[(curve["metric"] == "trust") & (curve["split"] == "test")].set_index("label_set")
    assert trust.loc["N=2", "error"] == pytest.approx(0.11)  # the x axis: against the likelihood label
    assert trust.loc["N=2", "error_vs_truth"] == pytest.approx(0.21)
    assert trust.loc["likelihood", "error"] == 0.0
    assert trust.loc["N=2", "diff"] == pytest.approx(0.06)
    assert trust.loc["N=2", "verdict"] == "beats"
    assert trust.loc["likelihood", "diff"] == pytest.approx(0.01)
    assert list(curve["metric"].unique()) == sorted(label_noise.COMPARED)


@pytest.mark.parametrize("verdicts, expected", [
    (("is level with", "is level with", "is level with"), "does not pay at any noise level tried"),
    (("beats", "beats", "is level with"), "pays from a label error rate of 0.200 (N=4) up"),
    (("beats", "is level with", "beats"), "pays at some noise levels but not in the order of their noise"),
])
def test_whether_the_term_pays_is_read_from_the_verdicts_in_order_of_noise(verdicts, expected):
    rows = pd.DataFrame({"label_set": ["N=2", "N=4", "likelihood"], "error": [0.3, 0.2, 0.1], "verdict": verdicts,
                         "diff": 0.0, "low": -0.1, "high": 0.1, "n": 3})
    assert prose.noise_pays_phrase(rows.sample(frac=1, random_state=0)) == expected


def test_an_empty_study_says_why_once_and_fills_every_slot_briefly():
    empty = label_noise.run([], "unused", [0], {}, pd.DataFrame(), workers=1)
    curve = label_noise.curve(empty["errors"], empty["runs"])
    gaps = label_noise.weight_gaps(label_noise.weights_by_label(empty["pairs"]))
    values = readings.label_noise_readings(curve, gaps, empty["errors"])
    assert curve.empty and gaps.empty
    assert [name for name, text in values.items() if "did not run" in text] == ["noise_sets", "noise_levels"]
    assert values["noise_pays"] == values["noise_pays_ood"] == "was not tested"
    assert values["noise_weights_truth"] == values["noise_answerable_acc_test"] == "not measured"
    assert not any("`" in text for text in values.values())  # glued text is not markdown: backticks would show
    compared = {f"noise_{metric}_{split}" for metric in label_noise.COMPARED for split in ("test", "ood")}
    assert set(values) == {"noise_sets", "noise_main_sets", "noise_levels", "noise_truth", "noise_pays",
                           "noise_pays_ood", "noise_weights_truth", "noise_weights_likelihood", *compared}


def truth_errors(never_shown_called_known=0.0):
    """Three label sets' mean errors: against the likelihood label N=1 0.12, N=4 0.06, the
    likelihood 0; against the world's ground truth 0.18, 0.22 and 0.26 (on the queries inside
    the world's boundary 0.03 more), and `never_shown_called_known` on never-shown facts."""
    rows = []
    for name, x, world in zip(("N=1", "N=4", "likelihood"), (0.12, 0.06, 0.0), (0.18, 0.22, 0.26)):
        rows += [{"label_set": name, "truth": "likelihood label", "region": "all", "error": x},
                 {"label_set": name, "truth": "ground truth", "region": "all", "error": world},
                 {"label_set": name, "truth": "ground truth", "region": "inside", "error": world + 0.03},
                 {"label_set": name, "truth": "ground truth", "region": "beyond-intrinsic",
                  "error": never_shown_called_known}]
    return pd.DataFrame(rows).assign(seed=0)


def test_errors_against_the_world_are_told_in_the_order_of_noise_with_what_they_are_made_of():
    levels = "against the world's ground truth they are N=1 (0.180), N=4 (0.220) and the likelihood (0.260)"
    text = prose.noise_truth_phrase(truth_errors())
    assert text.startswith(levels + ". Every one of those errors is a query inside the world's boundary")
    assert "even the likelihood label calls unknown 0.290 of the queries inside" in text
    assert prose.noise_truth_phrase(truth_errors(never_shown_called_known=0.1)) == levels
