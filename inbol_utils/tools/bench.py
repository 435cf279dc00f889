"""Benchmarks: where the study's time goes, how close the model runs to the machine, and what
batching and likelihoods save.

    python -m inbol_utils.tools.bench [--artifacts data/default] [--queries 300] [--repeats 5]

1. Profile: the last run's time per stage, per cell and per part of the work (training,
   greedy answers, sampling, likelihoods, data building), as the runner recorded it in
   <artifacts>/profile.json (`inbol_utils.runner.profiling`), and the rate its training ran at
   (`training_rate`), the machine's speed on the study's own work.
2. Roofline: the machine's matmul throughput at the model's own shapes (fp32 and bf16, one
   thread, as every job runs), the FLOPs of a training step, of greedy answers and of N=10
   sampling counted by torch's FlopCounterMode, the fraction of the fp32 matmul rate each
   reaches, and the share of a training step spent inside matmuls (torch.profiler).
3. Confidence: N-sample confidence one query at a time vs batched with a shared prompt, and
   the exact likelihood vs N=10 sampling, against the study's speed targets (`TARGETS`) and
   both samplers: the shared-prompt one the study uses and transformers' plain
   num_return_sequences, which computes every prompt N times.
Each timing is the median of --repeats runs; the contenders of 3 run back to back in every
repeat, so a slow spell of a shared machine slows all of them. Everything printed is also
written to <artifacts>/bench.json.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from .. import confidence, generation, inputs, modeling, protocol, world
from ..runner import environment
from ..artifacts import read_json, write_json

# The study's speed targets for confidence: batched sampling at least 2x faster than one query at
# a time, the exact likelihood at least 10x cheaper than N=10 sampling.
TARGETS = {"batching speed-up": 2.0, "likelihood saving": 10.0}
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_scaled_dot_product_flash_attention_for_cpu",
              "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_gflops(tokens: int, width: int, out: int, dtype: torch.dtype, repeats: int) -> float:
    a, w = torch.randn(tokens, width, dtype=dtype), torch.randn(width, out, dtype=dtype)
    return 2 * tokens * width * out / median_seconds(lambda: [a @ w for _ in range(20)], repeats) * 20 / 1e9


def roofline(model, processor, train_rows: list[dict], queries, repeats: int) -> dict:
    """Measured matmul peak at the model's shapes, and what training and decoding reach of it."""
    text = model.config.text_config
    batch = inputs.SFTCollator(processor)(train_rows)
    tokens = batch["input_ids"].numel()
    shapes = [(text.hidden_size, text.hidden_size), (text.hidden_size, text.intermediate_size),
              (text.intermediate_size, text.hidden_size)]
    peak = {str(dtype).removeprefix("torch."): statistics.median(
        matmul_gflops(tokens, k, n, dtype, repeats) for k, n in shapes) for dtype in (torch.float32, torch.bfloat16)}

    modeling.freeze_vision(model)
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step():
        model(**batch).loss.backward()
        optimiser.step()
        optimiser.zero_grad()

    step_flops = flops(lambda: model(**batch).loss.backward())
    optimiser.zero_grad()
    step_s = median_seconds(step, repeats)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    events = prof.key_averages()
    matmul_share = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS) / \
        sum(e.self_cpu_time_total for e in events)
    model.eval()

    images, questions = list(queries["image"]), list(queries["question"])
    greedy = lambda: generation.greedy_answers(model, processor, images, questions, batch_size=128)
    sampled = lambda: generation.generate_answers(model, processor, images, questions, num_samples=10,
                                                  temperature=1.0, batch_size=64)
    work = {"training step": (step_flops, step_s),
            f"greedy answers ({len(questions)} queries)": (flops(greedy), median_seconds(greedy, repeats)),
            f"N=10 sampling ({len(questions)} queries)": (flops(sampled), median_seconds(sampled, repeats))}
    rows = {name: {"gflop": round(f / 1e9, 3), "seconds": round(s, 4), "gflop_per_s": round(f / s / 1e9, 1),
                   "fraction_of_fp32_matmul": round(f / s / 1e9 / peak["float32"], 3)}
            for name, (f, s) in work.items()}
    return {"matmul_gflop_per_s": {k: round(v, 1) for k, v in peak.items()}, "tokens_per_step": tokens,
            "work": rows, "training_step_matmul_share": round(matmul_share, 3)}


def confidence_costs(model, processor, probe, single: int, samples: int, batch_size: int,
                     repeats: int) -> dict:
    """Seconds per query of sampled confidence (one at a time, batched) and of the likelihood."""
    images, questions, gold = list(probe["image"]), list(probe["question"]), list(probe["answers"])

    def sampled(k: int, size: int, share_prompt: bool = True) -> list[float]:
        out = generation.generate_answers(model, processor, images[:k], questions[:k], num_samples=samples,
                                          temperature=1.0, batch_size=size, share_prompt=share_prompt)
        return [confidence.correct_fraction(s, g) for s, g in zip(out, gold)]

    contenders = {"single": (lambda: sampled(single, 1), single),
                  "batched": (lambda: sampled(len(questions), batch_size), len(questions)),
                  "batched, plain": (lambda: sampled(len(questions), batch_size, False), len(questions)),
                  "likelihood": (lambda: generation.answer_probability(model, processor, images, questions, gold),
                                 len(questions))}
    for fn, _ in contenders.values():  # warm-up
        fn()
    rounds = []
    for _ in range(repeats):
        timed = {}
        for name, (fn, n) in contenders.items():
            start = time.perf_counter()
            fn()
            timed[name] = (time.perf_counter() - start) / n
        rounds.append(timed)
    median = {name: statistics.median(r[name] for r in rounds) for name in contenders}
    median["batching speed-up"] = statistics.median(r["single"] / r["batched"] for r in rounds)
    median["likelihood saving"] = statistics.median(r["batched"] / r["likelihood"] for r in rounds)
    median["likelihood saving, plain"] = statistics.median(r["batched, plain"] / r["likelihood"] for r in rounds)
    return median


def training_rate(stages: list[dict]) -> float | None:
    """Training tokens per CPU core-second over `stages` (profile.json's): how fast the machine ran
    the study's own work, over all of it. Machines that report the same CPU ran the same default
    study in 1,300 to 1,835 s, and a 0.1 s matmul benchmark before each stage did not follow them
    ("Running the study"); the token counts do not depend on the machine, so this rate does. Comparable between
    runs of the same parameters; None where nothing was trained (or every training job was reused)."""
    tokens = sum(stage["parts_tokens"].get("training", 0) for stage in stages)
    seconds = sum(stage["parts_core_seconds"].get("training", 0) for stage in stages)
    return tokens / seconds if seconds else None


def _training_speed(stages: list[dict]) -> str:
    rate = training_rate(stages)
    return f"; training {rate:,.0f} tokens per core-second" if rate else ""


def show_profile(profile: dict) -> None:
    print(f"last run's profile ({profile['machine']}):")
    stages = profile["stages"]
    total = sum(stage["seconds"] for stage in stages.values())
    for stem, stage in stages.items():
        parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(stage["parts_core_seconds"].items(), key=lambda kv: -kv[1]))
        reused_seconds = sum(stage.get("reused_core_seconds", {}).values())  # profiles before reuse was counted have none
        reused = f"; reused from records: {reused_seconds:.0f} core-seconds of work" if reused_seconds else ""
        print(f"  {stem:26s} {stage['seconds']:7.1f} s ({100 * stage['seconds'] / total:4.1f}%)  "
              f"kernel {stage['kernel_and_papermill']:.0f} s; core-seconds: {parts}{_training_speed([stage])}{reused}")
    print(f"  {'all stages':26s} {total:7.1f} s{_training_speed(list(stages.values()))}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.tools.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", default="data/default", help="a study's artifacts folder (make book)")
    parser.add_argument("--queries", type=int, default=300, help="answerable probe queries to time")
    parser.add_argument("--single", type=int, default=30, help="queries for the one-at-a-time run")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    artifacts = Path(args.artifacts)
    model_path, world_path = protocol.seed_dir(artifacts, 0) / "base_model", protocol.world_dir(artifacts, 0)
    for what, path in (("model", model_path), ("world", world_path)):
        if not path.exists():
            raise SystemExit(f"No {what} at {path}: run `make book` (or notebook 00) first, or pass --artifacts.")
    if not 0 < args.single <= args.queries or args.repeats < 1:
        raise SystemExit("need 0 < --single <= --queries and --repeats >= 1")
    probe = world.load_split(world_path, "probe").filter(lambda r: len(r["answers"]) > 0)
    if len(probe) < args.queries:
        raise SystemExit(f"--queries {args.queries} exceeds the {len(probe)} answerable probe queries")
    probe = probe.select(range(args.queries))
    torch.set_num_threads(1)  # as every job of the study runs (`parallel`)
    report = {"machine": environment.machine(), "threads": 1}
    profile_path = artifacts / "profile.json"
    if profile_path.is_file():
        report["profile"] = read_json(profile_path, "the runner")
        show_profile(report["profile"])

    model, processor = modeling.load(model_path)
    costs = confidence_costs(model, processor, probe, args.single, args.samples, args.batch_size, args.repeats)
    report["confidence"] = costs
    print(f"confidence on {args.queries} answerable probe queries, N={args.samples}, median of {args.repeats}:")
    print(f"  sampled, one query at a time   : {1000 * costs['single']:8.2f} ms/query")
    print(f"  sampled, batched ({args.batch_size}, shared prompt) : {1000 * costs['batched']:8.2f} ms/query"
          f"   speed-up {costs['batching speed-up']:5.1f}x (target >= {TARGETS['batching speed-up']:g}x)")
    print(f"  sampled, batched, plain num_return_sequences : {1000 * costs['batched, plain']:8.2f} ms/query")
    print(f"  likelihood                     : {1000 * costs['likelihood']:8.2f} ms/query"
          f"   {costs['likelihood saving']:5.1f}x cheaper than N={args.samples} shared-prompt sampling, "
          f"{costs['likelihood saving, plain']:5.1f}x than plain (target >= {TARGETS['likelihood saving']:g}x)")

    train_rows = [{"image": r["image"], "question": r["question"], "response": r["answers"][0]}
                  for r in world.load_split(world_path, "base_train").select(range(32))]
    line = roofline(model, processor, train_rows, probe, args.repeats)  # trains it: after the costs above
    report["roofline"] = line
    peak = line["matmul_gflop_per_s"]
    print(f"roofline, one thread: matmul at the model's shapes {peak['float32']:.1f} GFLOP/s fp32, "
          f"{peak['bfloat16']:.1f} bf16")
    for name, row in line["work"].items():
        print(f"  {name:32s} {row['gflop']:8.3f} GFLOP in {1000 * row['seconds']:8.1f} ms: "
              f"{row['gflop_per_s']:5.1f} GFLOP/s, {100 * row['fraction_of_fp32_matmul']:4.1f}% of fp32 matmul")
    print(f"  share of a training step inside matmuls and attention: {100 * line['training_step_matmul_share']:.0f}%")
    write_json(artifacts / "bench.json", report)
    print(f"written to {artifacts / 'bench.json'}")
    return report


if __name__ == "__main__":
    main()
