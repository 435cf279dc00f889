"""Exercise 2: the certainty of a preference pair. Fill in `pair_certainty`, then check it
against the study's own tests:

    make exercise EX=pair_certainty
"""
import torch
from torch import Tensor


def pair_certainty(confidence: Tensor, propensity: Tensor, tau: float, ca_signal: str) -> Tensor:
    """Each pair's certainty in [0, 1], as CA-DPO weighs it.

    - The label's certainty: how far the label confidence lies from the threshold `tau`,
      |confidence - tau|, scaled so that a confidence of 0 or 1 on the far side of tau gives 1
      whatever tau is (divide by the larger of tau and 1 - tau).
    - `ca_signal` "label": the label's certainty; "policy": the `propensity` as given (the
      policy's own pull towards the rejected response, already in [0, 1]); "both": their
      product. Any other value: a ValueError that names the valid ones.

    `confidence` and `propensity` may be tensors, lists or numbers; return float32 tensors."""
    raise NotImplementedError("write pair_certainty")
