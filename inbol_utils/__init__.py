"""Core logic of the InBoL study (Wang et al. 2024, "Drawing the Line").

Small modules, one job each:
  world        the generated multimodal world and its splits (ground truth included)
  sources      named data sources (generated, easy_vqa, datasets) and the record of which one built a world
  real_data    a real VQA table in the same schema: image-disjoint splits, extrinsic constructions
  easy_vqa     the easy-VQA adapter (the PyPI package's dataset; what each image contains)
  vqa_datasets the generic adapter for any `datasets` VQA table (image/question/answers)
  modeling     tokenizer, processor and a tiny LLaVA, built offline; load/save in the hub format
  vision       pretraining of the vision tower (the world's cells, or a source's image labels)
  generation   batched greedy and sampled answers (shared prompt cache), exact answer log-probabilities
  training     supervised training (base model and IDK-IT), loss on response tokens only
  answers      answer normalisation, refusal phrasings, refusal and hybrid detection
  metrics      Acc, RefR, Err, Trust_c, region matrices, AUROC, seed-paired verdicts
  confidence   sampled and likelihood confidence probes, boundary placement, abstention
  idk_data     labelling, IDK-IT sets, preference pairs and their schemas
  dpo          the (confidence-aware) DPO loss, its pair terms and its trainer
  recipes      the training stages as functions and a command line (accelerate-ready)
  protocol     the fair test: per-seed artifacts, methods, tuning on validation, replication
  evaluation   scoring a model on a split
  experiments  chapter 4's loops: scoring every seed, comparisons, ablations
  parallel     independent jobs in one-thread processes
  reuse        jobs answered from their record when their ingredients did not change
  profiling    CPU time per part of the work, per stage
  artifacts    atomic writes and clear errors for missing inputs
  pipeline     the papermill runner
  bench        profile, roofline and confidence-cost benchmarks
  plots, book  figure and glue helpers
"""
