"""The machinery that runs the study: none of it is the method, and a reader of the science can skip it.

  pipeline     the papermill runner: stages in order, skipped when current, one runner per folder
  parameters   every notebook's parameter schema, checked by the runner and by each notebook
  staging      a stage changes its artifacts completely or not at all
  warm_kernel  the next stage's kernel, started and importing while the stage before runs
  reuse        jobs answered from their record when their ingredients did not change
  parallel     independent jobs in one-thread processes
  profiling    CPU time and tokens per part of the work, per stage
  environment  pinned threads and determinism; the machine and libraries of every stage
"""
