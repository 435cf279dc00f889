"""Benchmark: batched vs one-at-a-time sampling, and likelihood vs sampled confidence.

    python -m inbol_utils.bench [--model data/default/seed0/base_model] [--queries 300] [--repeats 9]

Targets from the design brief: batched sampling at least 2x the throughput of one query at a
time; exact-likelihood confidence at least 10x cheaper than N=10 sampled confidence on the same
queries. Each repeat times the three contenders back to back, so a slow spell of a shared
machine slows all three; the figures are medians over repeats, ratios included.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from . import confidence, generation, modeling, world


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="data/default/seed0/base_model")
    parser.add_argument("--world", default="data/default/world")
    parser.add_argument("--queries", type=int, default=300, help="answerable probe queries to time")
    parser.add_argument("--single", type=int, default=30, help="queries for the one-at-a-time run")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    for what, path in (("model", args.model), ("world", args.world)):
        if not Path(path).exists():
            raise SystemExit(f"No {what} at {path}: run `make book` (or notebook 00) first, or pass --{what}.")
    if not 0 < args.single <= args.queries or args.repeats < 1:
        raise SystemExit("need 0 < --single <= --queries and --repeats >= 1")

    model, processor = modeling.load(args.model)
    probe = world.load_split(args.world, "probe").filter(lambda r: len(r["answers"]) > 0)
    if len(probe) < args.queries:
        raise SystemExit(f"--queries {args.queries} exceeds the {len(probe)} answerable probe queries")
    ds = probe.select(range(args.queries))
    images, questions, gold = list(ds["image"]), list(ds["question"]), list(ds["answers"])
    n = args.samples

    def sampled(k: int, batch_size: int) -> list[float]:
        """N-sample confidence as the probe computes it: generate, then score each sample."""
        samples = generation.generate_answers(model, processor, images[:k], questions[:k], num_samples=n,
                                              temperature=1.0, batch_size=batch_size)
        return [confidence.correct_fraction(s, g) for s, g in zip(samples, gold)]

    contenders = {
        "single": lambda: sampled(args.single, 1),
        "batched": lambda: sampled(args.queries, args.batch_size),
        "likelihood": lambda: generation.answer_probability(model, processor, images, questions, gold),
    }
    per_query = {"single": args.single, "batched": args.queries, "likelihood": args.queries}
    for fn in contenders.values():  # warm-up
        fn()
    rounds = [{name: seconds(fn) / per_query[name] for name, fn in contenders.items()}
              for _ in range(args.repeats)]
    median = {name: statistics.median(r[name] for r in rounds) for name in contenders}
    median["batching speed-up"] = statistics.median(r["single"] / r["batched"] for r in rounds)
    median["likelihood saving"] = statistics.median(r["batched"] / r["likelihood"] for r in rounds)

    print(f"model {args.model}, {args.queries} answerable probe queries, N={n} samples, "
          f"median of {args.repeats} interleaved runs")
    print(f"  sampled confidence, one query at a time : {1000 * median['single']:8.2f} ms/query")
    print(f"  sampled confidence, batched ({args.batch_size} queries) : {1000 * median['batched']:8.2f} ms/query"
          f"   speed-up {median['batching speed-up']:5.1f}x (target >= 2x)")
    print(f"  likelihood confidence                   : {1000 * median['likelihood']:8.2f} ms/query"
          f"   {median['likelihood saving']:5.1f}x cheaper than N={n} batched (target >= 10x)")
    return median


if __name__ == "__main__":
    main()
