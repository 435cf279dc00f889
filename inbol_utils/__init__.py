"""Core logic of the InBoL study (Wang et al. 2024, "Drawing the Line").

Small modules, one job each; a concept lives in exactly one of them:
  artifacts    atomic files and folders, and a missing artifact named with the stage that makes it
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
  label_noise  chapter 5: label sets of known noise, each training CA-DPO and vanilla DPO alike
  training     supervised training (loss on response tokens only), checkpoint selection
  dpo          CA-DPO: its config (CADPOConfig), pair terms, loss (cadpo_loss) and trainer
  recipes      the training stages as functions and a command line (accelerate-ready)
  methods      the method registry: names, how each is trained, where its model lives, glue keys
  protocol     the fair test: per-seed artifacts, tuning on validation, replication, scoring every seed
  ablations    chapter 4's ablation grid: InBoL retrained with one choice changed
  replication  two runs side by side: do the verdicts agree, how far did the means move
  base_targets what a base model must know before the study draws its boundaries, and the check
  frontier     risk-coverage curves and their area, for every model
  replicates   each replicate on its own: does a verdict rest on one replicate's world?

Beside them, three subpackages that are not the method:
  runner       runs the notebooks: the papermill runner, parameter schemas, staging, reuse,
               parallel jobs, profiling, the pinned environment
  book         presents the results: prose numbers, tables, figures, GPU-hour costs, a profile's book
  tools        run by hand or by make: benchmarks, the exercises' check, the "Try it" runs, reruns
"""
import sys

if sys.version_info < (3, 11):  # one line, before a syntax error or a missing module says it worse
    sys.exit(f"inbol_utils needs Python 3.11 or newer (the study is tested on 3.11); this is {sys.version.split()[0]}")
