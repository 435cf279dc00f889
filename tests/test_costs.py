"""Token counts per part of the work, and the GPU-hour estimate built on them."""
import json
from pathlib import Path

import pytest

from inbol_utils import costs, generation, inputs, modeling, profiling

ROOT = Path(__file__).resolve().parents[1]


def test_generation_counts_what_goes_through_the_model(processor, tiny_model, tiny_world):
    rows = tiny_world[0]["ood"].select(range(6))
    questions = rows["question"]
    prompts = [inputs.prompt_text(processor, q) for q in questions]
    prompt_tokens = int(inputs.encode(processor, list(rows["image"]), prompts, "left", "cpu")
                        ["attention_mask"].sum())
    profiling.take()
    answers = generation.generate_answers(tiny_model, processor, list(rows["image"]), questions,
                                          num_samples=3, temperature=1.0, share_prompt=False)
    counts = profiling.take()["tokens"]
    assert counts["sampling"] == 3 * prompt_tokens  # without a shared cache, each sample reads the prompt
    assert counts["sampling" + profiling.ROWS] == 6
    words = sum(len(a.split()) for sample in answers for a in sample)  # a word is a token here
    assert words <= counts["sampling" + profiling.DECODED] <= 6 * 3 * 8  # 8 new tokens at most
    generation.generate_answers(tiny_model, processor, list(rows["image"]), questions, num_samples=3,
                                temperature=1.0, share_prompt=True)
    assert profiling.take()["tokens"]["sampling"] == prompt_tokens  # one pass over each prompt


def _profile(path: Path, stage: str, counts: dict) -> Path:
    path.write_text(json.dumps({"machine": "test", "stages": {stage: {"parts_tokens": counts}}}))
    return path


def test_estimate_scales_each_part_by_its_rows_and_prices_it(tmp_path):
    smoke = ROOT / "params" / "smoke.yaml"
    longer = tmp_path / "longer.yaml"
    longer.write_text(smoke.read_text().replace("base_steps: 12", "base_steps: 48"))
    stage = costs.STAGES[0]
    profile = _profile(tmp_path / "profile.json", stage, {"training": 1000, "training (rows)": 50,
                                                          "greedy answers": 400, "greedy answers (rows)": 20,
                                                          "greedy answers (decoded)": 40})
    rate = costs.Throughput(peak_tflops=100.0, mfu=0.5, decode_tokens_per_s=10.0)
    table = costs.estimate(profile, smoke, longer, model_params=1e9, row_factor=2.0, throughput=rate)
    training, greedy = (table.set_index("part").loc[p] for p in ("training", "greedy answers"))
    assert training["tokens_target"] == 1000 * 4 * 2.0  # four times the steps, twice the tokens a row
    # greedy answers: the probes during training grow with the steps (every 6: 2 -> 8), the test split does not
    p_smoke = (2 * 48 + 96) * 2
    p_longer = (8 * 48 + 96) * 2
    assert greedy["tokens_target"] == pytest.approx(400 * p_longer / p_smoke * 2.0)
    assert greedy["decoded_target"] == pytest.approx(40 * p_longer / p_smoke)
    assert training["gpu_hours"] == pytest.approx(8000 * 6 * 1e9 / (100e12 * 0.5) / 3600)
    assert greedy["gpu_hours"] == pytest.approx((greedy["tokens_target"] * 2 * 1e9 / 50e12
                                                 + greedy["decoded_target"] / 10.0) / 3600)


def test_estimate_needs_a_profile_with_token_counts(tmp_path):
    profile = _profile(tmp_path / "profile.json", costs.STAGES[0], {})
    with pytest.raises(ValueError, match="no token counts"):
        costs.measured(profile)


def test_ablation_variants_follow_notebook_04s_list():
    p = {"ablations": ["pairs", "anchor", "ca_signal", "ca_mode", "tau", "signal", "sources"],
         "ca_signal": "both", "tau_values": [0.3, 0.7], "signal_values": ["likelihood"]}
    assert costs._ablations(p) == (1 + 1 + 2 + 1 + 2 + 1 + 2, 2 + 1 + 2)
    assert costs._ablations({**p, "ca_signal": "label", "ablations": ["ca_signal"]}) == (1, 0)
