"""Token counts per part of the work, and the GPU-hour estimate built on them."""
import json
from pathlib import Path

import pytest

from inbol_utils import answers as answers_module
from inbol_utils import architectures, generation, inputs, world
from inbol_utils.book import costs
from inbol_utils.runner import profiling

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


SMOKE = ROOT / "params" / "smoke.yaml"


def _profile(path: Path, counts: dict[str, dict], params: Path = SMOKE, drop: str | None = None) -> Path:
    """A runner's profile of `params`' run: every stage of `costs.STAGES` (but `drop`), with the
    parameters it ran with and the token counts `counts` gives it."""
    ran = costs.parameters(params)
    stages = {stage: {"parts_tokens": counts.get(stage, {}), "parameters": ran[stage]}
              for stage in costs.STAGES if stage != drop}
    path.write_text(json.dumps({"machine": "test", "stages": stages}))
    return path


def test_estimate_scales_each_part_by_its_rows_and_prices_it(tmp_path):
    longer = tmp_path / "longer.yaml"
    longer.write_text(SMOKE.read_text().replace("base_steps: 12", "base_steps: 48"))
    profile = _profile(tmp_path / "profile.json", {costs.STAGES[0]: {
        "training": 1000, "training (rows)": 50, "greedy answers": 400, "greedy answers (rows)": 20,
        "greedy answers (decoded)": 40}})
    rate = costs.Throughput(peak_tflops=100.0, mfu=0.5, decode_tokens_per_s=10.0)
    table = costs.estimate(profile, longer, model_params=1e9, row_factor=2.0, throughput=rate)
    training, greedy = (table.set_index("part").loc[p] for p in ("training", "greedy answers"))
    assert training["tokens_target"] == 1000 * 4 * 2.0  # four times the steps, twice the tokens a row
    # greedy answers: the probes during training (each of the answerable validation queries) grow with the steps
    # (every 6: 2 -> 8), the test split does not
    p_smoke = (2 * costs.ANSWERABLE * 48 + 96) * 2
    p_longer = (8 * costs.ANSWERABLE * 48 + 96) * 2
    assert greedy["tokens_target"] == pytest.approx(400 * p_longer / p_smoke * 2.0)
    assert greedy["decoded_target"] == pytest.approx(40 * p_longer / p_smoke)
    assert training["gpu_hours"] == pytest.approx(8000 * 6 * 1e9 / (100e12 * 0.5) / 3600)
    assert greedy["gpu_hours"] == pytest.approx((greedy["tokens_target"] * 2 * 1e9 / 50e12
                                                 + greedy["decoded_target"] / 10.0) / 3600)


def test_a_rerun_prices_the_jobs_it_reused_as_the_study_s_work(tmp_path):
    """A rerun that answered some jobs from their records did their work once before: the
    estimate counts it with the work done this time (`reused_tokens` beside `parts_tokens`)."""
    whole = _profile(tmp_path / "whole.json", {costs.STAGES[0]: {"training": 1000, "training (rows)": 50}})
    rerun = json.loads(_profile(tmp_path / "rerun.json", {costs.STAGES[0]: {"training": 400,
                                                                            "training (rows)": 20}}).read_text())
    rerun["stages"][costs.STAGES[0]]["reused_tokens"] = {"training": 600, "training (rows)": 30}
    (tmp_path / "rerun.json").write_text(json.dumps(rerun))
    assert costs.measured(tmp_path / "rerun.json").equals(costs.measured(whole))


def test_a_prompt_read_once_for_its_samples_is_counted_once_per_sample_where_the_target_reads_it_so(tmp_path):
    """The probe's sampling in notebook 01 of the smoke run: 120 prompts, 3 samples each on the first
    seed and 3 on the second (n_values [1, 3], n_samples 3), so 720 samples."""
    probe = costs.STAGES[1]
    profile = _profile(tmp_path / "profile.json", {probe: {"sampling": 2400, "sampling (rows)": 240,
                                                           "sampling (decoded)": 1500}})
    prompts, samples = 2 * 120, 120 * (3 + 3)
    by_sharing = {shared: costs.estimate(profile, SMOKE, 1e9, prompt_shared=shared).set_index("part").loc["sampling"]
                  for shared in [(True, True), (True, False), (False, False)]}
    assert by_sharing[(True, True)]["tokens_target"] == pytest.approx(2400)  # the same run, priced as it ran
    assert by_sharing[(False, False)]["tokens_target"] == pytest.approx(2400)
    assert by_sharing[(True, False)]["tokens_target"] == pytest.approx(2400 * samples / prompts)
    assert {round(row["decoded_target"]) for row in by_sharing.values()} == {1500}  # every sample decodes its own


def test_a_factor_per_part_must_name_every_part(tmp_path):
    profile = _profile(tmp_path / "profile.json", {costs.STAGES[0]: {"training": 1000, "training (rows)": 50,
                                                                     "greedy answers": 400}})
    factors = costs.part_factors({"prompt": 2.0, "row": 1.5}, tokenizer_factor=1.2)
    assert factors == pytest.approx({"greedy answers": 2.4, "likelihoods": 1.8, "sampling": 2.4, "training": 1.8})
    table = costs.estimate(profile, SMOKE, 1e9, factors).set_index("part")
    assert table.loc["training", "tokens_target"] == pytest.approx(1000 * 1.8)
    assert table.loc["greedy answers", "tokens_target"] == pytest.approx(400 * 2.4)
    with pytest.raises(ValueError, match="no factor for the part 'greedy answers'"):
        costs.estimate(profile, SMOKE, 1e9, {"training": 1.0})


def test_estimate_needs_every_stage_its_counts_and_its_parameters(tmp_path):
    with pytest.raises(ValueError, match="no token counts"):
        costs.measured(_profile(tmp_path / "empty.json", {}))
    with pytest.raises(ValueError, match=r"has no profile of \['04_evaluation'\]: run those stages"):
        costs.measured(_profile(tmp_path / "partial.json", {costs.STAGES[0]: {"training": 1}}, drop=costs.STAGES[4]))
    old = json.loads(_profile(tmp_path / "old.json", {costs.STAGES[0]: {"training": 1}}).read_text())
    del old["stages"][costs.STAGES[2]]["parameters"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="does not record the stages' parameters"):
        costs.measured_parameters(tmp_path / "old.json")


def test_template_factors_count_what_the_study_puts_through_each_processor(processor, tiny_world):
    """Rows through the study's LLaVA and through a tiny Qwen2-VL: what `inputs` encodes (and the
    runner's profile counts), and Qwen2-VL's template adds the same system turn and markers to
    every prompt, while a response costs both the same (its words and an end-of-turn marker)."""
    rows = tiny_world[0]["probe"].select(range(8))
    images, questions = list(rows["image"]), rows["question"]
    responses = [gold[0] if gold else "i don't know" for gold in rows["answers"]]  # answers and refusals
    qwen = architectures.build_processor("qwen2_vl", world.world_words() | answers_module.refusal_words())
    counted = {}
    for name, proc in (("llava", processor), ("qwen2_vl", qwen)):
        counted[name] = costs.row_tokens(proc, images, questions, responses)
        profiling.take()
        with profiling.part("greedy answers"):
            inputs.encode(proc, images, [inputs.prompt_text(proc, q) for q in questions], "left", "cpu")
        assert profiling.take()["tokens"]["greedy answers"] == counted[name]["prompt"], name
    assert counted["llava"]["row"] - counted["llava"]["prompt"] == counted["qwen2_vl"]["row"] - counted["qwen2_vl"]["prompt"]
    overhead = counted["qwen2_vl"]["prompt"] - counted["llava"]["prompt"]
    assert overhead > 0 and overhead % len(rows) == 0  # the same added tokens on every prompt
    factors = costs.template_factors(counted["llava"], counted["qwen2_vl"])
    assert factors == {kind: counted["qwen2_vl"][kind] / counted["llava"][kind] for kind in ("prompt", "row")}
    assert costs.image_tokens(processor, images[0]) == costs.image_tokens(qwen, images[0]) == 4  # one a grid cell


def test_ablation_variants_follow_notebook_04s_list():
    p = {"ablations": ["pairs", "anchor", "ca_signal", "ca_mode", "tau", "signal", "sources"],
         "ca_signal": "both", "tau_values": [0.3, 0.7], "signal_values": ["likelihood"]}
    assert costs._ablations(p) == (1 + 1 + 2 + 1 + 2 + 1 + 2, 2 + 1 + 2)
    assert costs._ablations({**p, "ca_signal": "label", "ablations": ["ca_signal"]}) == (1, 0)


def test_label_noise_sets_that_train_leave_out_chapter_twos_labels_and_real_sources():
    p = {"noise_n_values": [1, 2, 4, 10], "source": "generated", "n_samples": 10, "confidence_signal": "sampled"}
    assert costs._noise_sets(p) == 4  # N=1, 2, 4 and the likelihood; N=10 is the main table's
    assert costs._noise_sets({**p, "n_samples": 5}) == 5
    assert costs._noise_sets({**p, "confidence_signal": "likelihood"}) == 4  # the likelihood set is then chapter 2's
    assert costs._noise_sets({**p, "noise_n_values": []}) == 0
    assert costs._noise_sets({**p, "source": "easy_vqa"}) == 0


def test_the_answerable_share_is_the_worlds():
    assert costs.ANSWERABLE == pytest.approx(1 - world.WorldConfig.unanswerable_share)
