"""Developer tools, run by hand or by `make`, never by the notebooks.

  bench        where a run's time goes: profile, roofline and confidence-cost benchmarks
  bench_worlds does the base-model recipe meet its targets on any world? (notebook 00, one seed per world)
  exercises    an exercise's answer checked with the study's own tests of that function
  try_it       the chapters' "Try it" changes, run and recorded for the book
  reruns       the whole default study rerun on other worlds and float kernels, its verdicts recorded
"""
