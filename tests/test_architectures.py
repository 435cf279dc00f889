"""Hub-format architectures besides the study's LLaVA: tiny random Qwen2-VL and Idefics3 (SmolVLM's
architecture), built offline, saved in the hub format and loaded back through the Auto classes."""
import json

import pytest
import torch
from transformers import Qwen2VLProcessor

from inbol_utils import (answers, architectures, base_targets, chat, evaluation, generation, idk_data, inputs, methods,
                         modeling, protocol, recipes, world)
from inbol_utils.logprobs import IGNORE_INDEX
from worlds import small_config

HUB = ("qwen2_vl", "idefics3")
WORDS = world.world_words() | answers.refusal_words()
SIZE = modeling.ModelSize(vision_width=32, vision_layers=1, text_width=32, text_layers=1)
# What each template ends an assistant turn with. Qwen2-VL's is not its tokenizer's eos
# ("<|endoftext|>"), so a target or a stop condition built on eos would fail here.
END_OF_TURN = {"qwen2_vl": "<|im_end|>", "idefics3": "<end_of_utterance>"}


@pytest.fixture(scope="module", params=HUB)
def hub(request, tmp_path_factory):
    """(architecture, saved folder, model, processor): built, saved, and loaded back as a hub
    checkpoint is, through AutoModelForImageTextToText and AutoProcessor."""
    model, processor = architectures.build(request.param, WORDS, SIZE, seed=0)
    path = tmp_path_factory.mktemp(request.param) / "model"
    modeling.save(model, processor, path)
    loaded, loaded_processor = modeling.load(path, device="cpu")
    return request.param, path, loaded, loaded_processor


def test_hub_format_round_trip(hub, tiny_world):
    name, path, model, processor = hub
    assert json.loads((path / "config.json").read_text())["model_type"] == name
    rebuilt, _ = architectures.build(name, WORDS, SIZE, seed=0)
    rows = tiny_world[0]["test"].select(range(4))
    batch = inputs.labelled_batch(processor, list(rows["image"]), rows["question"], ["red"] * 4)
    batch.pop("labels")
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(**batch).logits, model(**batch).logits)
    texts = [inputs.prompt_text(processor, q) + inputs.response_text(processor, r)
             for q in rows["question"] for r in answers.REFUSAL_RESPONSES[:3] + ("top left",)]
    ids = processor.tokenizer(texts)["input_ids"]
    assert all(processor.tokenizer.unk_token_id not in row for row in ids)


def test_training_targets_end_with_the_templates_end_of_turn(hub, tiny_world):
    name, _, _, processor = hub
    tok = processor.tokenizer
    end = tok.convert_tokens_to_ids(END_OF_TURN[name])
    assert chat.turn(processor).end == END_OF_TURN[name] and chat.stop_token_ids(processor)[0] == end
    rows = tiny_world[0]["test"].select(range(3))
    responses = ["red", "i am not sure", "top left"]
    batch = inputs.labelled_batch(processor, list(rows["image"]), rows["question"], responses)
    for labels, response in zip(batch["labels"], responses):
        assert labels[labels != IGNORE_INDEX].tolist() == tok(response, add_special_tokens=False)["input_ids"] + [end]


def test_answers_are_read_without_template_residue(hub):
    name, _, _, processor = hub
    tok = processor.tokenizer
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]
    end, pad = ids(END_OF_TURN[name]), tok.pad_token_id
    rows = [ids("top left") + end + ids("blue circle") + [pad],  # cut at the end of the turn
            ids("red") + [pad] * (len(end) + 3),                    # cut at the padding
            ids("i don't know blue circle")]                        # never stopped: all of it
    width = max(map(len, rows))
    new = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    assert chat.decode_answers(processor, new) == ["top left", "red", "i don't know blue circle"]


def test_batched_greedy_equals_one_at_a_time(hub, tiny_world):
    _, _, model, processor = hub
    rows = tiny_world[0]["ood"].select(range(6))  # mixed question lengths: real left padding
    images, questions = list(rows["image"]), rows["question"]
    batched = generation.greedy_answers(model, processor, images, questions, batch_size=6)
    assert batched == [generation.greedy_answers(model, processor, [i], [q], batch_size=1)[0]
                       for i, q in zip(images, questions)]


def test_shared_prompt_sampling_where_it_is_exact(hub, tiny_world):
    """Where the architecture is listed, sharing the prompt's cache draws exactly the tokens of
    num_return_sequences; elsewhere the default is num_return_sequences itself."""
    name, _, model, processor = hub
    rows = tiny_world[0]["ood"].select(range(6))
    run = lambda share: generation.generate_answers(model, processor, list(rows["image"]), rows["question"],
                                                    num_samples=3, temperature=1.0, seed=3, share_prompt=share)
    reference = run(False)
    assert run(None) == reference
    if name in generation.SHARED_PROMPT_MODELS:
        assert run(True) == reference
    assert len({tuple(s) for s in reference}) > 1


def test_answer_logprob_equals_manual_log_softmax(hub, tiny_world):
    _, _, model, processor = hub
    rows = tiny_world[0]["test"].select(range(3))
    responses = ["red", "top left", "i don't know"]
    fast = generation.response_logprobs(model, processor, list(rows["image"]), rows["question"], responses,
                                        batch_size=2)
    for k, (image, question, response) in enumerate(zip(rows["image"], rows["question"], responses)):
        prompt = inputs.prompt_text(processor, question)
        enc = processor(images=[image], text=[prompt + inputs.response_text(processor, response)],
                        return_tensors="pt")
        n_prompt = processor(images=[image], text=[prompt], return_tensors="pt")["input_ids"].shape[1]
        with torch.no_grad():
            logp = torch.log_softmax(model(**enc).logits[0].double(), -1)
        ids = enc["input_ids"][0]
        assert len(ids) - n_prompt == len(response.split()) + 1  # the response words and the end of turn
        assert fast[k].item() == pytest.approx(sum(logp[t - 1, ids[t]].item() for t in range(n_prompt, len(ids))),
                                               abs=1e-4)


def test_a_hub_checkpoint_naming_qwen2_vls_own_processor_loads_for_images(tmp_path, tiny_world):
    """A real Qwen2-VL checkpoint names Qwen2VLProcessor, whose video processor needs torchvision;
    it loads as the image-only twin and encodes exactly as the processor it was saved from."""
    model, processor = architectures.build("qwen2_vl", WORDS, SIZE, seed=0)
    modeling.save(model, processor, tmp_path / "ours")
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    for file in (tmp_path / "ours").iterdir():
        text = file.read_bytes()
        if file.name in ("processor_config.json", "tokenizer_config.json"):
            text = text.replace(b"ImageOnlyQwen2VLProcessor", b"Qwen2VLProcessor")
        (checkpoint / file.name).write_bytes(text)
    _, loaded = modeling.load(checkpoint, device="cpu")
    assert isinstance(loaded, Qwen2VLProcessor)
    prompt = inputs.prompt_text(processor, "what color is the circle")
    image = tiny_world[0]["test"][0]["image"]
    assert torch.equal(loaded(images=[image], text=[prompt], return_tensors="pt")["input_ids"],
                       processor(images=[image], text=[prompt], return_tensors="pt")["input_ids"])


def test_vision_encoder_frozen_and_lora_on_the_language_model_only(hub):
    name, _, _, _ = hub
    model, _ = architectures.build(name, WORDS, SIZE, seed=0)
    assert modeling.freeze_vision(model) > 0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(set(n.split(".")) & set(modeling.VISION_ENCODERS) and "merger" not in n for n in trainable)
    assert any("merger" in n or "connector" in n for n in trainable)  # the projector keeps training
    wrapped = recipes.lora(model, 2)
    adapters = [n for n, _ in wrapped.named_parameters() if "lora_A" in n]
    assert adapters and all(("language_model" in n or "text_model" in n) and "vision" not in n for n in adapters)


@pytest.mark.slow
@pytest.mark.parametrize("name", HUB)
def test_pipeline_runs_through_a_hub_architecture(tmp_path, name):
    """The package-level pipeline the notebooks call, through a saved tiny checkpoint of `name`
    (notebook 00's base_model): base training, probe, data, IDK-IT, on-policy pairs, DPO, CA-DPO
    with LoRA, the control, and scoring every method with the baselines. Notebooks 00-04 with
    params/hub_smoke.yaml run the same calls (several minutes: outside the test budget)."""
    artifacts = tmp_path / "artifacts"
    config = small_config(seed=0, n_base_perception=300, n_probe=60, n_validation=24, n_test=48, n_ood=24,
                                fact_scale=0.05)
    protocol.build_world(artifacts, 0, config)
    model, processor = architectures.build(name, WORDS, SIZE, seed=0)
    modeling.save(model, processor, tmp_path / "checkpoint")

    base = protocol.train_base_model(str(artifacts), 0, config, SIZE, 0, 40, 16, 3e-3, 40, more_steps=40,
                                     max_steps=40, targets=base_targets.Targets(), base_model=str(tmp_path / "checkpoint"))
    home = protocol.seed_dir(artifacts, 0)
    assert json.loads((home / "base_model" / "config.json").read_text())["model_type"] == name
    assert base["vision_accuracy"] == [] and base["curve"]["step"].tolist() == [40]
    saved = evaluation.predict(*modeling.load(home / "base_model"), world.load_split(protocol.world_dir(artifacts, 0), "test"),
                               desc=None)  # chapter 0's test answers are the saved model's
    assert base["test"].drop(columns="seed").equals(saved) and (base["test"]["seed"] == 0).all()
    table = protocol.probe_seed(str(artifacts), 0, 3, [3], 1.0, 64)
    # Trained on answers that end with the template's end of turn, the model now stops after a
    # word or two (an untrained one runs to max_new_tokens), leaving no template words behind.
    assert table["greedy"].str.split().map(len).max() <= 2
    assert not set(" ".join(table["greedy"]).split()) & {"assistant", "assistant:", "user", "user:", "system"}
    assert table["likelihood_conf"].between(0, 1).all()

    protocol.make_training_data(home, idk_data.labelling(0.5, "sampled", {}),
                                world.load_split(protocol.world_dir(artifacts, 0), "probe"), home, 0)
    world_path = str(protocol.world_dir(artifacts, 0))
    common = {"steps": 2, "batch_size": 4, "seed": 0}
    protocol.train_method(methods.IDKIT, {**common, "lr": 3e-3}, str(home), str(home / "base_model"),
                          str(protocol.model_dir(home, methods.IDKIT)), world_path, validation_every=1)
    pairs = protocol.build_pairs(str(home), str(protocol.model_dir(home, methods.IDKIT)), world_path, 3, 1.0, 0)
    assert len(pairs) > 0
    preference = {**common, "lr": 1e-4, "beta": 0.1, "anchor_weight": 1.0, "ca_signal": "both"}
    for method, settings in {methods.DPO: {**preference, "ca_mode": "none"},
                             methods.INBOL: {**preference, "ca_mode": "weight", "lora_rank": 2},
                             methods.CONTROL: {**common, "lr": 1e-4}}.items():
        result = protocol.train_method(method, settings, str(home), str(protocol.start_model(home, method)),
                                       str(protocol.model_dir(home, method)), world_path)
        assert len(result["log"]) == 2
    merged = modeling.load(protocol.model_dir(home, methods.INBOL), device="cpu")[0]
    assert not any("lora" in n for n, _ in merged.named_parameters())  # adapters merged when saved

    scored = protocol.score_seed(str(artifacts), 0, list(methods.TRAINED), 2, 0.5)
    runs = evaluation.per_run(scored)
    assert set(runs["method"]) == set(methods.METHODS)
    assert runs["trust"].between(-1, 1).all()
    assert set(scored["response_type"]) <= set(answers.RESPONSE_TYPES)
