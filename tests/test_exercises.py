"""The exercises' check command (`inbol_utils.tools.exercises`, `make exercise`) passes a right
answer and fails a wrong one, each written as a learner would, and fails the blank templates."""
import subprocess
import sys

import pytest

from inbol_utils.tools.exercises import EXERCISES, TEMPLATES

TORCH = "import torch\nimport torch.nn.functional as F\n"
RIGHT = {
    "trust_score": "def trust_score(acc, refr, c=1.0):\n    return acc - c * (1 - acc - refr)\n",
    "pair_certainty": TORCH + '''
def pair_certainty(confidence, propensity, tau, ca_signal):
    label = (torch.as_tensor(confidence, dtype=torch.float32) - tau).abs() / max(tau, 1 - tau)
    policy = torch.as_tensor(propensity, dtype=torch.float32)
    signals = {"label": label, "policy": policy, "both": label * policy}
    if ca_signal not in signals:
        raise ValueError(f"ca_signal must be one of {list(signals)}")
    return signals[ca_signal]
''',
    "cadpo_loss": TORCH + '''
def cadpo_loss(pc, pr, rc, rr, beta, weights=None, margins=None):
    logits = (pc - pr) - (rc - rr)
    per_pair = -F.logsigmoid(beta * logits - (0 if margins is None else margins))
    per_pair = per_pair if weights is None else weights * per_pair
    return per_pair.mean(), beta * (pc - rc).detach(), beta * (pr - rr).detach()
''',
}
WRONG = {  # a plausible slip each
    "trust_score": "def trust_score(acc, refr, c=1.0):\n    return acc - c * refr\n",  # refusals as errors
    "pair_certainty": RIGHT["pair_certainty"].replace("max(tau, 1 - tau)", "tau"),  # scaled by tau alone
    "cadpo_loss": RIGHT["cadpo_loss"].replace("beta * logits - (0 if margins is None else margins)",
                                              "beta * (logits - (0 if margins is None else margins))"),
}


def check(name, answer):
    return subprocess.run([sys.executable, "-m", "inbol_utils.tools.exercises", name, str(answer)],
                          capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXERCISES))
def test_the_check_passes_a_right_answer_and_fails_a_wrong_one_or_a_blank(name, tmp_path):
    for kind, text in (("right", RIGHT[name]), ("wrong", WRONG[name])):
        (tmp_path / f"{kind}.py").write_text(text)
    right, wrong, blank = (check(name, tmp_path / "right.py"), check(name, tmp_path / "wrong.py"),
                           check(name, TEMPLATES / f"{name}.py"))
    assert right.returncode == 0 and "every test passed" in right.stdout, right.stdout[-2000:]
    assert " passed" in right.stdout and " deselected" in right.stdout  # its own tests ran, the others not
    assert wrong.returncode == 1 and "not yet" in wrong.stdout, wrong.stdout[-2000:]
    assert blank.returncode == 1 and "NotImplementedError" in blank.stdout
