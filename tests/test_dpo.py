"""The CA-DPO loss against TRL and by hand, its confidence-aware terms, its config, its
collator's batches and its trainer."""
import copy
import math

import numpy as np
import pytest
import torch
from datasets import Dataset
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainingArguments

from inbol_utils.dpo import (
    CADPOConfig,
    CADPOTrainer,
    cadpo_loss,
    confidence_certainty,
    pair_certainty,
    pair_terms,
    with_pair_terms,
)
from inbol_utils.inputs import IGNORE_INDEX, PreferenceCollator
from inbol_utils.logprobs import sequence_logps
from inbol_utils.modeling import ModelSize, build_model, build_processor

# The functions the exercises ask for (inbol_utils.tools.exercises): the package's, or an answer.
@pytest.fixture(scope="module")
def loss(implementation):
    return implementation(cadpo_loss)


@pytest.fixture(scope="module")
def certainty_of_pairs(implementation):
    return implementation(pair_certainty)


# ---------------------------------------------------------------- the loss against TRL


def tiny_text_model_and_tokenizer():
    words = ("<pad> <unk> </s> what color is the sky grass sun blue green red yellow "
             "i don't know").split()
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>",
                                        eos_token="</s>", unk_token="<unk>")
    config = LlamaConfig(vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                         pad_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    return LlamaForCausalLM(config), tokenizer


@pytest.mark.exercise("cadpo_loss")
def test_cadpo_loss_and_trainer_match_trl(tmp_path, loss):
    """TRL 1.16's DPOTrainer._compute_loss (via compute_loss) on one collated batch is the
    reference. Aligned to plain sigmoid DPO, mostly TRL's defaults made explicit:
    loss_type=["sigmoid"], label_smoothing=0, precompute_ref_log_probs=False (reference run
    live), an explicit ref_model, ld_alpha=None and f_divergence_type="reverse_kl" (defaults),
    max_length large enough that nothing is truncated, and bf16=False: DPOConfig defaults to
    bf16, and accelerate then wraps the reference's forward in bf16 autocast even on CPU (a
    3e-3 difference in log-probs here), so both sides run in float32. TRL appends EOS to each
    completion and scores completion tokens only (its completion_mask); our labels are
    input_ids masked to IGNORE_INDEX outside that mask. The reference is a perturbed copy of
    the policy, so the log-ratios are not all zero and the loss is not trivially log 2."""
    from trl import DPOConfig, DPOTrainer

    policy, tokenizer = tiny_text_model_and_tokenizer()
    ref = copy.deepcopy(policy)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # TRL patches its models' forward; ours get untouched copies.
    our_policy, our_ref = copy.deepcopy(policy), copy.deepcopy(ref)
    pairs = Dataset.from_list([
        {"prompt": "what color is the sky", "chosen": " blue", "rejected": " i don't know"},
        {"prompt": "what color is the grass", "chosen": " green", "rejected": " red"},
        {"prompt": "what color is the sun", "chosen": " i don't know", "rejected": " yellow"},
    ])
    beta = 0.3
    trl_args = DPOConfig(output_dir=str(tmp_path / "trl"), beta=beta, loss_type=["sigmoid"],
                         label_smoothing=0.0, precompute_ref_log_probs=False, max_length=64,
                         bf16=False, per_device_train_batch_size=3, report_to=[], use_cpu=True)
    trl_trainer = DPOTrainer(model=policy, ref_model=ref, args=trl_args, train_dataset=pairs,
                             processing_class=tokenizer)
    batch = next(iter(trl_trainer.get_train_dataloader()))
    with torch.no_grad():
        trl_loss = trl_trainer.compute_loss(trl_trainer.model, batch).item()
    trl_trainer.log({})  # its public path for the batch's metrics: averaged into state.log_history
    trl_metrics = trl_trainer.state.log_history[-1]

    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, IGNORE_INDEX)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    with torch.no_grad():
        logps = sequence_logps(our_policy(**inputs).logits, labels)
        ref_logps = sequence_logps(our_ref(**inputs).logits, labels)
    ours_loss, chosen_rewards, rejected_rewards = loss(*logps.chunk(2), *ref_logps.chunk(2), beta)
    assert ours_loss.item() == pytest.approx(trl_loss, abs=1e-5)
    assert chosen_rewards.mean().item() == pytest.approx(trl_metrics["rewards/chosen"], abs=1e-5)
    assert rejected_rewards.mean().item() == pytest.approx(trl_metrics["rewards/rejected"],
                                                           abs=1e-5)
    assert logps.chunk(2)[0].mean().item() == pytest.approx(trl_metrics["logps/chosen"], abs=1e-4)

    # The trainer, on the same tokens in our batch format with vanilla pair terms, agrees too.
    our_args = CADPOConfig(output_dir=str(tmp_path / "ours"), report_to=[], use_cpu=True, beta=beta,
                           anchor_weight=0.0, ca_mode="none")
    ours = CADPOTrainer(model=our_policy, ref_model=our_ref, args=our_args)
    n_pairs = len(pairs)
    our_batch = {**inputs, "labels": labels, "pair_weight": torch.ones(n_pairs),
                 "pair_margin": torch.zeros(n_pairs)}
    with torch.no_grad():
        assert ours.compute_loss(our_policy, our_batch).item() == pytest.approx(trl_loss, abs=1e-5)
    ours.log({})
    assert ours.state.log_history[-1]["rewards/accuracies"] == pytest.approx(trl_metrics["rewards/accuracies"])


# ---------------------------------------------------------------- the loss by hand

PC = torch.tensor([-3.0, -5.5, -1.2, -8.0])  # policy chosen / rejected, reference chosen / rejected
PR = torch.tensor([-4.0, -5.0, -6.3, -2.0])
RC = torch.tensor([-3.5, -5.0, -2.0, -7.0])
RR = torch.tensor([-3.8, -5.2, -5.0, -2.5])


def hand_terms(beta, margins=(0, 0, 0, 0)):
    """-log(sigmoid(beta * logits - m)) per pair, with math only."""
    terms = []
    for pc, pr, rc, rr, m in zip(PC.tolist(), PR.tolist(), RC.tolist(), RR.tolist(), margins):
        x = beta * ((pc - pr) - (rc - rr)) - m
        terms.append(-math.log(1 / (1 + math.exp(-x))))
    return np.array(terms)


@pytest.mark.exercise("cadpo_loss")
@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_vanilla_loss_by_hand(loss, beta):
    value, chosen_rewards, rejected_rewards = loss(PC, PR, RC, RR, beta)
    assert value.item() == pytest.approx(hand_terms(beta).mean(), rel=1e-6)
    np.testing.assert_allclose(chosen_rewards, beta * (PC - RC).numpy(), rtol=1e-6)
    np.testing.assert_allclose(rejected_rewards, beta * (PR - RR).numpy(), rtol=1e-6)


@pytest.mark.exercise("cadpo_loss")
def test_weights_scale_each_pair_exactly(loss):
    weights = torch.tensor([0.1, 1.0, 0.55, 0.0])
    value, _, _ = loss(PC, PR, RC, RR, 0.5, weights=weights)
    assert value.item() == pytest.approx((weights.numpy() * hand_terms(0.5)).mean(), rel=1e-6)


@pytest.mark.exercise("cadpo_loss")
def test_margins_shift_each_logit_exactly(loss):
    margins = torch.tensor([0.0, 0.3, 1.0, 2.5])
    value, _, _ = loss(PC, PR, RC, RR, 0.5, margins=margins)
    assert value.item() == pytest.approx(hand_terms(0.5, margins.tolist()).mean(), rel=1e-6)


@pytest.mark.exercise("cadpo_loss")
def test_rewards_are_detached(loss):
    pc = PC.clone().requires_grad_()
    value, chosen_rewards, _ = loss(pc, PR, RC, RR, 0.5)
    assert value.requires_grad and not chosen_rewards.requires_grad


# ---------------------------------------------------------------- confidence-aware terms


def test_certainty_at_threshold_and_extremes():
    for tau in (0.1, 0.3, 0.5, 0.8):
        assert confidence_certainty(torch.tensor(tau), tau).item() == pytest.approx(0.0)
        far = 1.0 if tau <= 0.5 else 0.0
        assert confidence_certainty(torch.tensor(far), tau).item() == pytest.approx(1.0)
    certainty = confidence_certainty(torch.linspace(0, 1, 101), 0.3)
    assert certainty.min() >= 0 and certainty.max() <= 1 + 1e-6
    assert confidence_certainty(torch.tensor([0.0, 1.0]), 0.5).tolist() == [1.0, 1.0]


def test_pair_terms_modes():
    certainty = torch.tensor([1.0, 0.5, 0.0, 1.0])
    weights, margins = pair_terms(certainty, "none")
    assert weights.tolist() == [1.0] * 4 and margins.tolist() == [0.0] * 4
    weights, margins = pair_terms(certainty, "weight", weight_floor=0.2)
    raw = 0.2 + 0.8 * certainty.numpy()
    np.testing.assert_allclose(weights, raw / raw.mean(), rtol=1e-6)  # the average pair weighs 1
    assert weights[0] / weights[2] == pytest.approx(5.0) and margins.tolist() == [0.0] * 4
    weights, margins = pair_terms(certainty, "margin", margin_scale=3.0)
    np.testing.assert_allclose(margins, 3.0 * certainty.numpy())
    assert weights.tolist() == [1.0] * 4


@pytest.mark.exercise("pair_certainty")
def test_pair_certainty_signals(certainty_of_pairs):
    """label: how far the probe's confidence is from tau; policy: the propensity; both: the product."""
    confidence, propensity = torch.tensor([0.0, 0.5, 0.9]), torch.tensor([0.2, 1.0, 0.5])
    label = certainty_of_pairs(confidence, propensity, 0.5, "label")
    np.testing.assert_allclose(label, [1.0, 0.0, 0.8], rtol=1e-6)
    np.testing.assert_allclose(certainty_of_pairs(confidence, propensity, 0.5, "policy"), [0.2, 1.0, 0.5])
    np.testing.assert_allclose(certainty_of_pairs(confidence, propensity, 0.5, "both"), [0.2, 0.0, 0.4], rtol=1e-6)
    with pytest.raises(ValueError, match="label.*policy.*both"):
        certainty_of_pairs(confidence, propensity, 0.5, "magic")
    assert certainty_of_pairs([0.3], [1.0], 0.3, "label").dtype == torch.float32  # lists in, float32 out


@pytest.mark.exercise("pair_certainty")
@pytest.mark.parametrize("tau", [0.1, 0.3, 0.5, 0.8])
def test_label_certainty_is_0_at_the_threshold_and_1_at_the_far_end(certainty_of_pairs, tau):
    ones = torch.ones(3)
    far = 1.0 if tau <= 0.5 else 0.0
    found = certainty_of_pairs(torch.tensor([tau, far, (tau + far) / 2]), ones, tau, "label")
    np.testing.assert_allclose(found, [0.0, 1.0, abs(far - tau) / 2 / max(tau, 1 - tau)], atol=1e-6)


@pytest.mark.exercise("cadpo_loss")
def test_mode_none_is_vanilla_dpo(loss):
    weights, margins = pair_terms(torch.tensor([0.1, 0.4, 0.6, 0.9]), "none")
    ca, _, _ = loss(PC, PR, RC, RR, 0.5, weights, margins)
    vanilla, _, _ = loss(PC, PR, RC, RR, 0.5)
    assert ca.item() == vanilla.item()


def test_invalid_mode_names_valid_ones():
    with pytest.raises(ValueError, match="none.*weight.*margin"):
        pair_terms(torch.tensor([0.5]), "scale")


# ---------------------------------------------------------------- the trainer, on a tiny LLaVA

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220),
          "yellow": (230, 230, 30)}
SIZE = ModelSize(image_size=32, patch_size=16, vision_width=32, vision_layers=1, text_width=32,
                 text_layers=1, heads=2)


@pytest.fixture(scope="module")
def processor():
    return build_processor(["what", "color", "is", "it", "?", "i", "don't", "know", *COLOURS], SIZE)


@pytest.fixture(scope="module")
def pairs():
    """One pair per colour: the right colour is preferred to a refusal, weighted by certainty."""
    weights, margins = pair_terms(confidence_certainty(torch.tensor([0.9, 0.1, 0.5, 1.0]), 0.5), "weight")
    return [{"image": Image.new("RGB", (32, 32), rgb), "question": "what color is it ?",
             "chosen": name, "rejected": "i don't know", "pair_weight": w.item(),
             "pair_margin": m.item()}
            for (name, rgb), w, m in zip(COLOURS.items(), weights, margins)]


def dpo_args(tmp_path, steps: int, batch_size: int = 4, beta: float = 0.5, anchor_weight: float = 0.0,
             **overrides) -> CADPOConfig:
    return CADPOConfig(
        output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=4, learning_rate=3e-3, logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0, beta=beta,
        anchor_weight=anchor_weight, **overrides)


def test_collator_puts_b_chosen_rows_then_their_rejected_twins(processor, pairs):
    """The preference batch: rows 0..B-1 prompt + chosen, rows B..2B-1 the same prompt (and
    image) + rejected; labels on the response and end-of-sequence only; one weight and one
    margin per pair."""
    batch = PreferenceCollator(processor)(pairs)
    tok, n = processor.tokenizer, len(pairs)
    assert batch["input_ids"].shape[0] == 2 * n and batch["pixel_values"].shape[0] == 2 * n
    torch.testing.assert_close(batch["pixel_values"][:n], batch["pixel_values"][n:])
    responses = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    for ids, mask, labels, response in zip(batch["input_ids"], batch["attention_mask"], batch["labels"], responses):
        kept = labels[labels != IGNORE_INDEX].tolist()
        assert kept == tok(response, add_special_tokens=False).input_ids + [tok.eos_token_id]
        prompt = ids[labels == IGNORE_INDEX][mask[labels == IGNORE_INDEX] == 1].tolist()
        assert tok.decode(prompt).endswith("what color is it ? assistant:")
    assert batch["pair_weight"].tolist() == pytest.approx([p["pair_weight"] for p in pairs])
    assert batch["pair_margin"].tolist() == pytest.approx([p["pair_margin"] for p in pairs])
    assert batch["pair_weight"].shape == (n,) and batch["pair_weight"].dtype == torch.float32


def test_config_carries_the_knobs_and_with_pair_terms_reads_them():
    pairs = Dataset.from_dict({"confidence": [0.9, 0.5, 0.0], "propensity": [1.0, 1.0, 0.5]})
    args = CADPOConfig(output_dir="unused", report_to=[], use_cpu=True, ca_mode="margin", ca_signal="label",
                       margin_scale=2.0)
    assert not args.remove_unused_columns and args.beta == 0.1 and args.anchor_weight == 1.0
    terms = with_pair_terms(pairs, 0.5, args)
    assert terms["pair_margin"] == pytest.approx([1.6, 0.0, 2.0]) and terms["pair_weight"] == [1.0] * 3
    weighted = with_pair_terms(pairs, 0.5, CADPOConfig(output_dir="unused", report_to=[], use_cpu=True,
                                                      ca_signal="both", weight_floor=0.5))
    raw = [0.5 + 0.5 * 0.8, 0.5, 0.5 + 0.5 * 0.5]  # certainty: label * propensity
    assert weighted["pair_weight"] == pytest.approx([w / (sum(raw) / 3) for w in raw])
    for bad in ({"ca_mode": "scale"}, {"ca_signal": "magic"}, {"beta": 0.0}, {"weight_floor": 2.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            CADPOConfig(output_dir="unused", report_to=[], use_cpu=True, **bad)


def test_trainer_learns_logs_and_leaves_reference_alone(tmp_path, processor, pairs):
    policy, ref = build_model(processor, SIZE, seed=0), build_model(processor, SIZE, seed=0)
    ref_before = {k: v.clone() for k, v in ref.state_dict().items()}
    trainer = CADPOTrainer(model=policy, ref_model=ref, args=dpo_args(tmp_path, 6), train_dataset=pairs,
                           processing_class=processor)
    trainer.train()

    history = [h for h in trainer.state.log_history if "loss" in h]
    assert len(history) == 6
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert history[0]["rewards/accuracies"] == 0.0  # policy == reference: every reward is 0
    assert history[-1]["rewards/accuracies"] == 1.0
    assert history[-1]["rewards/margins"] > 0
    for key in ("rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        assert key in history[-1]
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in ref_before.items())
    assert not any(p.requires_grad for p in ref.parameters()) and not ref.training

    metrics = trainer.evaluate(pairs)
    assert metrics["eval_loss"] < history[0]["loss"] and metrics["eval_rewards/accuracies"] == 1.0


def test_gradient_accumulation_matches_full_batch(tmp_path, processor, pairs):
    """The loss is a mean over pairs, so 2 x 2 accumulated must take the same step as 1 x 4.
    Plain SGD without clipping: Adam's first step and gradient clipping would hide a wrong
    scale (Trainer would skip the division if it thought the loss a token-count-normalised one)."""
    params = []
    for batch_size, accumulation in ((4, 1), (2, 2)):
        policy, ref = build_model(processor, SIZE, seed=0), build_model(processor, SIZE, seed=1)
        args = dpo_args(tmp_path / str(batch_size), 1, batch_size, optim="sgd", max_grad_norm=0,
                        gradient_accumulation_steps=accumulation, lr_scheduler_type="constant")
        CADPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=pairs,
                     processing_class=processor).train()
        params.append(torch.cat([p.detach().flatten() for p in policy.parameters()]))
    torch.testing.assert_close(params[0], params[1], atol=1e-6, rtol=1e-5)


def test_anchor_adds_length_normalised_chosen_nll(tmp_path, processor, pairs):
    """The anchor is RPO's: each chosen response's NLL divided by its own token count, averaged
    over pairs, so a long response does not outweigh a short one."""
    policy, ref = build_model(processor, SIZE, seed=0), build_model(processor, SIZE, seed=1)
    rows = [dict(p, chosen=p["chosen"] + (" red red" if k == 0 else "")) for k, p in enumerate(pairs)]
    batch = PreferenceCollator(processor)(rows)
    losses = []
    for anchor_weight in (0.0, 0.5):
        trainer = CADPOTrainer(model=policy, ref_model=ref, args=dpo_args(tmp_path, 1, anchor_weight=anchor_weight))
        with torch.no_grad():
            losses.append(trainer.compute_loss(policy, batch).item())
    chosen = {k: v[:4] for k, v in batch.items() if k not in ("pair_weight", "pair_margin")}
    with torch.no_grad():
        logps = sequence_logps(policy(**{k: v for k, v in chosen.items() if k != "labels"}).logits,
                               chosen["labels"])
    tokens = (chosen["labels"][:, 1:] != IGNORE_INDEX).sum(-1)
    assert tokens[0] == tokens[1] + 2  # the first chosen response is two words longer
    nll = (-logps / tokens).mean().item()
    assert losses[1] - losses[0] == pytest.approx(0.5 * nll, rel=1e-5)
    with pytest.raises(ValueError, match="beta > 0"):
        dpo_args(tmp_path, 1, beta=-0.5)


def test_trainer_says_what_it_needs(tmp_path, processor, pairs):
    policy, ref = build_model(processor, SIZE, seed=0), build_model(processor, SIZE, seed=0)
    plain = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    with pytest.raises(TypeError, match="CADPOConfig"):
        CADPOTrainer(model=policy, ref_model=ref, args=plain)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        CADPOTrainer(model=policy, ref_model=ref, args=dpo_args(tmp_path, 1, remove_unused_columns=True))
    no_terms = Dataset.from_list(pairs).remove_columns(["pair_weight", "pair_margin"])
    with pytest.raises(ValueError, match="with_pair_terms"):
        CADPOTrainer(model=policy, ref_model=ref, args=dpo_args(tmp_path, 1), train_dataset=no_terms,
                     processing_class=processor)
