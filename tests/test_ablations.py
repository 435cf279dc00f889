"""Chapter 4's ablation grid: which variants each ablation trains, and the table they make."""
import pandas as pd
import pytest

from inbol_utils import ablations, evaluation
from inbol_utils.methods import DPO, IDKIT, INBOL

INBOL_CHOSEN = {"lr": 1e-4, "beta": 0.1, "anchor_weight": 1.0, "ca_mode": "weight", "ca_signal": "both", "stop_at": 4}
LABELLING = {"tau": 0.5, "confidence_signal": "sampled",
             "region_mix": {"inside": 1.0, "beyond-intrinsic": 1.0, "beyond-extrinsic": 1.0}}


def grid(names=ablations.ABLATIONS, tau_values=(0.3, 0.7), signal_values=("likelihood",), **chosen):
    found = ablations.variants(names, {**INBOL_CHOSEN, **chosen}, LABELLING, tau_values, signal_values)
    return [(v.ablation, v.setting) for v in found]


def test_default_grid():
    assert grid() == [("pairs", "base samples"), ("anchor_weight", "0"), ("ca_signal", "label"),
                      ("ca_signal", "policy"), ("ca_mode", "margin"), ("tau", "0.3"), ("tau", "0.7"),
                      ("signal", "likelihood"), ("sources", "intrinsic only"), ("sources", "extrinsic only")]


def test_every_other_choice_is_ablated_whatever_was_chosen():
    """With CA-DPO's margin form chosen, the weight form is the ablation (it used to vanish);
    with one certainty signal chosen, both others are."""
    assert [s for a, s in grid(["ca_mode"], ca_mode="margin")] == ["weight"]
    assert [s for a, s in grid(["ca_signal"], ca_signal="label")] == ["policy", "both"]
    assert [s for a, s in grid(["anchor"], anchor_weight=0.0)] == ["1"]


def test_a_setting_equal_to_the_reference_is_not_retrained():
    assert grid(["tau"], tau_values=(0.3, 0.5)) == [("tau", "0.3")]
    assert grid(["signal"], signal_values=("sampled", "likelihood")) == [("signal", "likelihood")]


def test_variants_change_what_their_ablation_names():
    found = {v.name: v for v in ablations.variants(ablations.ABLATIONS, INBOL_CHOSEN, LABELLING, [0.3], [])}
    assert found["pairs-base_samples"].pairs == "base samples"
    assert found["anchor_weight-0"].settings == {"anchor_weight": 0.0}
    assert found["tau-0.3"].labelling == {**LABELLING, "tau": 0.3}
    assert found["sources-intrinsic_only"].labelling["region_mix"]["beyond-extrinsic"] == 0.0
    assert found["sources-intrinsic_only"].labelling["region_mix"]["beyond-intrinsic"] == 1.0
    assert all(v.labelling is None for v in found.values() if v.ablation in ("pairs", "ca_mode", "ca_signal"))


def test_unknown_ablation_names_the_known_ones():
    with pytest.raises(ValueError, match="beta.*choose from pairs, anchor"):
        ablations.check_names(["pairs", "beta"])


def scored_rows(method: str, seed: int, n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"method": method, "seed": seed, "split": ["test", "ood"] * (n // 2),
                         "response_type": ["correct", "refusal", "wrong", "correct"][:n],
                         "region_truth": "inside", "answerable": True, "base_known": True})


def test_run_ablations_adds_each_reference_point_in_order(monkeypatch):
    """Every studied ablation gets the main table's InBoL run as `<setting> (InBoL)`, in the
    order of the grid (it used to follow a set's order, which changes from run to run), and
    ca_mode also gets the tuned vanilla DPO as its "none" point."""
    seen = []

    def fake_run(variant, artifacts, seed, chosen, pair_samples, temperature, base_known):
        seen.append(variant.name)
        return scored_rows("variant", seed).assign(ablation=variant.ablation, setting=variant.setting)

    monkeypatch.setattr(ablations, "run_variant", fake_run)
    scored = pd.concat([scored_rows(m, s) for m in (IDKIT, DPO, INBOL) for s in (0, 1)], ignore_index=True)
    chosen = {IDKIT: {}, INBOL: INBOL_CHOSEN}
    runs = ablations.run_ablations(["ca_mode", "pairs"], "unused", 0, chosen, LABELLING, scored, 3, 1.0,
                                   [], [], workers=1)
    assert seen == ["pairs-base_samples", "ca_mode-margin"]
    assert list(dict.fromkeys(zip(runs["ablation"], runs["setting"]))) == [
        ("pairs", "base samples"), ("ca_mode", "margin"), ("pairs", "on-policy (InBoL)"),
        ("ca_mode", "weight (InBoL)"), ("ca_mode", "none (DPO)")]
    reference = evaluation.summary(scored[(scored["method"] == INBOL) & (scored["seed"] == 0)
                                          & (scored["split"] == "test")])
    assert ablations.value(runs, "pairs", "on-policy (InBoL)", "acc") == reference["acc"]
    assert pd.isna(ablations.value(runs, "tau", "0.3", "acc"))  # not run


def test_no_ablations_give_an_empty_frame_with_every_column(monkeypatch):
    """`ablations: []` (params/quick.yaml): nothing trains, and chapter 4's table, figure and
    phrases read an empty frame with the usual columns instead of failing."""
    monkeypatch.setattr(ablations, "run_variant", lambda **job: pytest.fail("nothing should train"))
    scored = pd.concat([scored_rows(m, 0) for m in (IDKIT, DPO, INBOL)], ignore_index=True)
    runs = ablations.run_ablations([], "unused", 0, {IDKIT: {}, INBOL: INBOL_CHOSEN}, LABELLING, scored,
                                   3, 1.0, [], [], workers=1)
    assert runs.empty and {"ablation", "setting", "split", "trust", "answerable_acc", "hybrid"} <= set(runs)
    assert pd.isna(ablations.value(runs, "anchor_weight", "0", "trust"))


def test_the_reference_run_is_inbol_on_the_ablations_seed_in_domain():
    runs = pd.DataFrame([{"method": m, "seed": s, "split": split,
                          "trust": 10 * s + (m == INBOL) + (split == "ood") / 10}
                         for m in (IDKIT, INBOL) for s in (0, 1) for split in ("ood", "test")])
    assert ablations.reference_run(runs, 1)["trust"] == 11.0
