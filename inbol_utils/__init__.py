"""Core logic of the InBoL study (Wang et al. 2024, "Drawing the Line").

Small modules, one job each; a concept lives in exactly one of them:
  world        the generated multimodal world, its splits and probe halves (ground truth included)
  sources      named data sources (generated, easy_vqa, datasets) and the record of which one built a world
  real_data    a real VQA table in the same schema: image-disjoint splits, extrinsic constructions
  easy_vqa     the easy-VQA adapter (the PyPI package's dataset; what each image contains)
  vqa_datasets the generic adapter for any `datasets` VQA table (image/question/answers)
  answers      answer normalisation, refusal phrasings, refusal and hybrid detection
  metrics      the formulas: Acc, RefR, Err, Trust_c, region matrices, AUROC, knowledge
               quadrants, the seed-paired interval and its verdict
  modeling     tokenizer, processor (chat template) and a tiny LLaVA, built offline; hub-format load/save
  vision       pretraining of the vision tower (the world's cells, or a source's image labels)
  chat         an answer's place in any chat template: end-of-turn marker, stop tokens, answers read back
  image_only   Qwen2-VL's processors without their video half (which needs torchvision)
  architectures tiny Qwen2-VL and Idefics3 models built offline, for the tests
  inputs       rows -> model inputs: prompts, responses, labels, both batch formats, both collators
  logprobs     per-sequence log-probabilities from logits
  generation   batched greedy and sampled answers (shared prompt cache), exact answer log-probabilities
  confidence   sampled and likelihood confidence probes, boundary placement
  evaluation   scoring responses, summarising them into the headline metrics, comparing methods
  idk_data     labelling, IDK-IT sets, preference pairs and their schemas
  training     supervised training (loss on response tokens only), checkpoint selection
  dpo          CA-DPO: its config (CADPOConfig), pair terms, loss (cadpo_loss) and trainer
  recipes      the training stages as functions and a command line (accelerate-ready)
  methods      the method registry: names, how each is trained, where its model lives, glue keys
  protocol     the fair test: per-seed artifacts, tuning on validation, replication, scoring every seed
  ablations    chapter 4's ablation grid: InBoL retrained with one choice changed
  parallel     independent jobs in one-thread processes
  reuse        jobs answered from their record when their ingredients did not change
  profiling    CPU time per part of the work, per stage
  artifacts    atomic writes and clear errors for missing inputs
  pipeline     the papermill runner
  parameters   every notebook's parameter schema, checked by the runner and by each notebook
  staging      a stage changes its artifacts completely or not at all
  environment  pinned threads and determinism; the machine and libraries of every stage
  replication  two runs side by side: do the verdicts agree, how far did the means move
  costs        GPU hours from measured token counts
  bench        profile, roofline and confidence-cost benchmarks
  plots        figures and captions shared by the chapters
  book         numbers into the book's prose (myst_nb.glue)
"""
