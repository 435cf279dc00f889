"""Core logic of the InBoL study (Wang et al. 2024, "Drawing the Line").

Small modules, one job each:
  world       the generated multimodal world and its splits (ground truth included)
  modeling    tokenizer, processor and a tiny LLaVA, built offline; load/save in the hub format
  generation  batched greedy and sampled answers, exact answer log-probabilities
  training    supervised training (base model and IDK-IT), loss on response tokens only
  answers     answer normalisation, refusal phrasings and refusal detection
  metrics     Acc, RefR, Err, Trust_c, region matrices, AUROC
  dpo         the (confidence-aware) DPO loss and its trainer
  artifacts   atomic writes and clear errors for missing inputs
  pipeline    the papermill runner
"""
