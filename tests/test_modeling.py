"""The tiny LLaVA: tokenizer, rows to inputs, hub-format round trip, batched generation, exact log-probs."""
import pytest
import torch

from inbol_utils import answers, generation, inputs, modeling
from inbol_utils.inputs import IGNORE_INDEX


def test_tokenizer_round_trip(processor, tiny_world):
    tok = processor.tokenizer
    texts = list(tiny_world[0]["test"]["question"][:50]) + list(answers.REFUSAL_RESPONSES)
    for text in texts:
        ids = tok(text, add_special_tokens=False).input_ids
        assert tok.unk_token_id not in ids, text
        assert tok.decode(ids) == text


def test_prompt_and_response_tokens(processor):
    prompt = inputs.prompt_text(processor, "what color is the object in the top left")
    ids = processor.tokenizer(prompt + inputs.response_text(processor, "red")).input_ids
    assert processor.tokenizer.unk_token_id not in ids
    assert ids[-2:] == [processor.tokenizer.convert_tokens_to_ids("red"), processor.tokenizer.eos_token_id]


def test_save_load_identical_logits(tmp_path, processor, tiny_model, tiny_world):
    rows = tiny_world[0]["test"].select(range(4))
    batch = inputs.labelled_batch(processor, list(rows["image"]), rows["question"], ["red"] * 4)
    batch.pop("labels")
    modeling.save(tiny_model, processor, tmp_path / "m")
    loaded, loaded_processor = modeling.load(tmp_path / "m", device="cpu")
    assert type(loaded).__name__ == "LlavaForConditionalGeneration"
    assert loaded_processor.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    with torch.no_grad():
        assert torch.equal(tiny_model(**batch).logits, loaded(**batch).logits)


def test_load_missing_model_says_what_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found|Cannot load"):
        modeling.load(tmp_path / "no_such_model")


def test_batched_greedy_equals_one_at_a_time(processor, tiny_model, tiny_world):
    rows = tiny_world[0]["ood"].select(range(12))  # mixed question lengths: real left padding
    images, questions = list(rows["image"]), rows["question"]
    batched = generation.greedy_answers(tiny_model, processor, images, questions, batch_size=12)
    single = [generation.greedy_answers(tiny_model, processor, [i], [q], batch_size=1)[0]
              for i, q in zip(images, questions)]
    assert batched == single


def test_sampling_is_seeded(processor, tiny_model, tiny_world):
    rows = tiny_world[0]["test"].select(range(6))
    run = lambda seed: generation.generate_answers(tiny_model, processor, list(rows["image"]), rows["question"],
                                                   num_samples=3, temperature=1.0, seed=seed)
    first = run(0)
    assert first == run(0)
    assert first != run(1)  # a sampler that ignored its seed would pass the line above
    assert len(first) == 6 and all(len(s) == 3 for s in first)


def test_shared_prompt_sampling_equals_num_return_sequences(processor, tiny_model, tiny_world):
    """Prefilling each prompt once and repeating its cache draws exactly the tokens that
    transformers' own num_return_sequences draws (same seed), on a left-padded batch."""
    rows = tiny_world[0]["ood"].select(range(12))  # mixed question lengths: real left padding
    prompts = [inputs.prompt_text(processor, q) for q in rows["question"]]
    batch = inputs.encode(processor, list(rows["image"]), prompts, "left", "cpu")
    assert (batch["attention_mask"] == 0).any()
    tok = processor.tokenizer
    options = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=6,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    with torch.no_grad():
        torch.manual_seed(3)
        reference = tiny_model.generate(**batch, num_return_sequences=5, **options)
        torch.manual_seed(3)
        shared = tiny_model.generate(**generation.prefill_shared_prompt(tiny_model, batch, 5), **options)
    assert torch.equal(shared, reference)
    assert len({tuple(row) for row in reference[:5, batch["input_ids"].shape[1]:].tolist()}) > 1  # real samples
    run = lambda share: generation.generate_answers(tiny_model, processor, list(rows["image"]), rows["question"],
                                                    num_samples=5, temperature=1.0, seed=3, share_prompt=share)
    assert run(True) == run(False)


def test_answer_logprob_equals_manual_log_softmax(processor, tiny_model, tiny_world):
    rows = tiny_world[0]["test"].select(range(3))
    responses = ["red", "top left", "i don't know"]
    fast = generation.response_logprobs(tiny_model, processor, list(rows["image"]), rows["question"], responses)
    for k, (image, question, response) in enumerate(zip(rows["image"], rows["question"], responses)):
        prompt = inputs.prompt_text(processor, question)
        enc = processor(images=[image], text=[prompt + inputs.response_text(processor, response)], return_tensors="pt")
        n_prompt = processor(images=[image], text=[prompt], return_tensors="pt")["input_ids"].shape[1]
        with torch.no_grad():
            logp = torch.log_softmax(tiny_model(**enc).logits[0].double(), -1)
        ids = enc["input_ids"][0]
        manual = sum(logp[t - 1, ids[t]].item() for t in range(n_prompt, len(ids)))
        assert len(ids) - n_prompt == len(response.split()) + 1  # the response words and </s>
        assert fast[k].item() == pytest.approx(manual, abs=1e-4)


def test_response_logprobs_keep_callers_order(processor, tiny_model, tiny_world):
    """Rows are batched by length internally; the answer must not depend on the callers' order."""
    rows = tiny_world[0]["test"].select(range(7))
    images, questions = list(rows["image"]), list(rows["question"])
    responses = ["red", "top left", "i don't know", "3", "velmora", "blue circle", "no"]
    forward = generation.response_logprobs(tiny_model, processor, images, questions, responses, batch_size=3)
    backward = generation.response_logprobs(tiny_model, processor, images[::-1], questions[::-1],
                                            responses[::-1], batch_size=2)
    assert torch.allclose(forward, backward.flip(0), atol=1e-5)
    assert len(set(forward.tolist())) == 7


def test_labelled_batch_labels_only_response(processor, tiny_world):
    rows = tiny_world[0]["test"].select(range(6))
    responses = ["red", "3", "i am not sure", "top left", "velmora", ""]  # "": an empty answer
    batch = inputs.labelled_batch(processor, list(rows["image"]), rows["question"], responses)
    tok = processor.tokenizer
    for labels, response in zip(batch["labels"], responses):
        kept = labels[labels != IGNORE_INDEX].tolist()
        assert kept == tok(response, add_special_tokens=False).input_ids + [tok.eos_token_id]


def test_answer_probability_sums_gold_strings(processor, tiny_model, tiny_world):
    rows = tiny_world[0]["test"].select(range(2))
    images, questions = list(rows["image"]), rows["question"]
    both = generation.answer_probability(tiny_model, processor, images, questions, [["red", "blue"], []])
    parts = generation.response_logprobs(tiny_model, processor, [images[0]] * 2, [questions[0]] * 2, ["red", "blue"]).exp()
    assert both[0] == pytest.approx(parts.sum().item(), rel=1e-5)
    assert both[1] == 0.0
