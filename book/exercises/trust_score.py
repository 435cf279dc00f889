"""Exercise 1: Trust. Fill in `trust_score`, then check it against the study's own tests:

    make exercise EX=trust_score
"""


def trust_score(acc, refr, c: float = 1.0):
    """Trust_c of a model from its accuracy `acc` and refusal rate `refr` (shares of all
    queries, each in [0, 1]): a correct answer earns 1, a refusal 0, and a wrong answer costs
    `c`. It must work on plain floats and on numpy arrays alike."""
    raise NotImplementedError("write trust_score")
