"""The training recipes as the notebooks call them: IDK-IT (full and LoRA) and CA-DPO."""
import datasets
import pytest
import torch

from inbol_utils import answers, dpo, generation, idk_data, modeling, recipes


def idk_rows(tiny_world, n=16) -> datasets.Dataset:
    rows = tiny_world[0]["probe"].select(range(n))
    return datasets.Dataset.from_dict({
        "id": rows["id"], "image": list(rows["image"]), "question": rows["question"],
        "response": [a[0] if a else answers.REFUSAL_RESPONSES[0] for a in rows["answers"]],
        "region": rows["region_truth"], "region_truth": rows["region_truth"], "family": rows["family"],
        "confidence": [1.0] * n,
    }, features=idk_data.IDK_FEATURES)


def changed(before, after) -> list[str]:
    old = dict(before.named_parameters())
    return [n for n, p in after.named_parameters() if not torch.equal(p, old[n])]


def test_lora_idk_it_trains_only_the_language_model(tmp_path, processor, tiny_model, tiny_world):
    modeling.save(tiny_model, processor, tmp_path / "base")
    args = recipes.arguments(tmp_path / "lora", steps=3, lr=5e-2, batch_size=4, seed=0)
    log = recipes.train_idk_it(tmp_path / "base", idk_rows(tiny_world), tmp_path / "lora", args, lora_rank=2)
    trained, _ = modeling.load(tmp_path / "lora", device="cpu")
    names = changed(tiny_model, trained)
    assert len(log) > 0 and names
    assert all("language_model" in n and ("q_proj" in n or "v_proj" in n) for n in names)


def test_preference_training_moves_the_policy_from_its_reference(tmp_path, processor, tiny_model, tiny_world):
    modeling.save(tiny_model, processor, tmp_path / "idk")
    rows = tiny_world[0]["probe"].select(range(8))
    pairs = datasets.Dataset.from_dict({
        "id": rows["id"], "image": list(rows["image"]), "question": rows["question"],
        "chosen": [answers.REFUSAL_RESPONSES[1]] * 8, "rejected": ["red"] * 8,
        "region": ["beyond-extrinsic"] * 8, "region_truth": ["beyond-extrinsic"] * 8,
        "family": ["unanswerable"] * 8, "confidence": [0.0] * 8, "propensity": [0.5] * 8,
    }, features=idk_data.PREFERENCE_FEATURES)
    args = recipes.arguments(tmp_path / "dpo", steps=4, lr=5e-3, batch_size=4, seed=0,
                             config_class=dpo.CADPOConfig, beta=0.1, anchor_weight=1.0, ca_mode="weight")
    log = recipes.train_preferences(tmp_path / "idk", dpo.with_pair_terms(pairs, 0.5, args), tmp_path / "dpo", args)
    assert {"rewards/margins", "rewards/accuracies", "logps/chosen"} <= set(log.columns)
    policy, _ = modeling.load(tmp_path / "dpo", device="cpu")
    def margin(model):
        images, questions = list(pairs["image"]), pairs["question"]
        chosen = generation.response_logprobs(model, processor, images, questions, pairs["chosen"])
        return (chosen - generation.response_logprobs(model, processor, images, questions, pairs["rejected"])).mean()
    assert margin(policy) > margin(tiny_model)
    assert not any("vision_tower" in n for n in changed(tiny_model, policy))


def test_ca_weights_follow_the_saved_labelling(tmp_path, tiny_world):
    """Rerun notebook 02 with another tau and the CA-DPO weights follow it, with nobody passing
    tau again: the preference set carries the labelling that made it."""
    rows = tiny_world[0]["probe"].select(range(4))
    pairs = datasets.Dataset.from_dict({
        "id": rows["id"], "image": list(rows["image"]), "question": rows["question"],
        "chosen": ["red"] * 4, "rejected": [answers.REFUSAL_RESPONSES[0]] * 4,
        "region": ["inside"] * 4, "region_truth": ["inside"] * 4, "family": ["perception"] * 4,
        "confidence": [0.3, 0.5, 0.7, 0.9], "propensity": [1.0] * 4,
    }, features=idk_data.PREFERENCE_FEATURES)
    weights = {}
    args = dict(steps=1, lr=1e-3, batch_size=4, seed=0, config_class=dpo.CADPOConfig)
    label_weights = recipes.arguments(tmp_path / "out", **args, ca_mode="weight", ca_signal="label")
    for tau in (0.3, 0.9):
        idk_data.save(pairs, tmp_path / "preferences", idk_data.labelling(tau, "sampled", {}))
        weights[tau] = recipes.load_pairs(tmp_path / "preferences", label_weights)["pair_weight"]
    assert weights[0.3][0] == min(weights[0.3]) and weights[0.9][3] == min(weights[0.9])
    vanilla = recipes.arguments(tmp_path / "out", **args, ca_mode="none")
    assert recipes.load_pairs(tmp_path / "preferences", vanilla)["pair_weight"] == [1.0] * 4
    assert "pair_weight" not in recipes.load_pairs(tmp_path / "preferences").column_names  # the control's
    with pytest.raises(ValueError, match="confidence_signal"):
        idk_data.labelling(0.5, "magic", {})
