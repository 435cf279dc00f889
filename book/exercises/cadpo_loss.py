"""Exercise 3: the (confidence-aware) DPO loss. Fill in `cadpo_loss`, then check it against the
study's own tests (among them one against TRL's DPO loss):

    make exercise EX=cadpo_loss
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def cadpo_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor,
               ref_chosen_logps: Tensor, ref_rejected_logps: Tensor, beta: float,
               weights: Tensor | None = None,
               margins: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The DPO loss over B pairs of per-sequence log-probabilities, with CA-DPO's per-pair
    weights w_i and margins m_i:

        logits_i = (policy_chosen_i - policy_rejected_i) - (ref_chosen_i - ref_rejected_i)
        loss     = mean_i  w_i * -log sigmoid(beta * logits_i - m_i)

    With no weights (all 1) and no margins (all 0) it is the sigmoid DPO loss of Rafailov et
    al. (2023). Return (loss, chosen_rewards, rejected_rewards), the rewards being DPO's
    implicit rewards beta * (policy - reference) log-probability of each response, detached
    from the graph (they are logged, not trained on)."""
    raise NotImplementedError("write cadpo_loss")
