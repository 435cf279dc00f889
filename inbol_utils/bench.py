"""Benchmark: batched vs one-at-a-time sampling, and likelihood vs sampled confidence.

    python -m inbol_utils.bench [--model data/default/base_model] [--queries 300] [--repeats 5]

Prints medians over repeats (the machines are noisy). Targets from the design brief: batched
sampling at least 2x the throughput of one query at a time; exact-likelihood confidence at least
10x cheaper than N=10 sampled confidence on the same queries.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from . import generation, modeling, world


def timed(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m inbol_utils.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="data/default/base_model")
    parser.add_argument("--world", default="data/default/world")
    parser.add_argument("--queries", type=int, default=300, help="probe queries to time")
    parser.add_argument("--single", type=int, default=30, help="queries for the one-at-a-time run")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if not Path(args.model).exists():
        raise SystemExit(f"No model at {args.model}: run `make book` (or notebook 00) first, or pass --model.")

    model, processor = modeling.load(args.model)
    probe = world.load_split(args.world, "probe")
    ds = probe.filter(lambda r: len(r["answers"]) > 0).select(range(args.queries))
    images, questions, gold = list(ds["image"]), ds["question"], ds["answers"]
    n = args.samples

    def sample(k: int, batch_size: int):
        return lambda: generation.generate_answers(model, processor, images[:k], questions[:k], num_samples=n,
                                                   temperature=1.0, batch_size=batch_size)

    batched = timed(sample(args.queries, args.batch_size), args.repeats) / args.queries
    single = timed(sample(args.single, 1), args.repeats) / args.single
    likelihood = timed(lambda: generation.answer_probability(model, processor, images, questions, gold),
                       args.repeats) / args.queries

    print(f"model {args.model}, {args.queries} probe queries, N={n} samples, median of {args.repeats} runs")
    print(f"  sampling, one query at a time : {1000 * single:8.2f} ms/query")
    print(f"  sampling, batched ({args.batch_size} queries) : {1000 * batched:8.2f} ms/query   "
          f"speed-up {single / batched:5.1f}x (target >= 2x)")
    print(f"  likelihood confidence         : {1000 * likelihood:8.2f} ms/query   "
          f"{batched / likelihood:5.1f}x cheaper than N={n} batched sampling (target >= 10x)")


if __name__ == "__main__":
    main()
