"""Per-sequence log-probabilities from logits: the one formula that confidence, DPO and tests share."""
from __future__ import annotations

import torch

from .inputs import IGNORE_INDEX


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(label_t | tokens < t) over positions whose label is not IGNORE_INDEX.

    `logits` is (batch, time, vocab) from a causal LM, `labels` (batch, time) aligned with the
    inputs (as for the HF loss): position t's logits predict label t+1.
    """
    logits = logits[:, :-1, :].float()
    labels = labels[:, 1:]
    mask = labels != IGNORE_INDEX
    safe = labels.masked_fill(~mask, 0)
    token_logps = torch.gather(logits.log_softmax(-1), 2, safe.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(-1)
