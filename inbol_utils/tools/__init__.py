"""Developer tools, run by hand or by `make`, never by the notebooks.

  bench        where a run's time goes: profile, roofline and confidence-cost benchmarks
  bench_worlds does the base-model recipe meet its targets on any world?
"""
