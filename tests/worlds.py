"""The tiny world of the tests: small enough to build in a second, with every region present."""
from dataclasses import replace

from inbol_utils.world import WorldConfig


def small_config(**overrides) -> WorldConfig:
    """A tiny world for tests and smoke runs."""
    base = WorldConfig(n_base_perception=400, n_probe=120, n_test=120, n_ood=60, n_validation=60,
                       fact_scale=0.2)
    return replace(base, **overrides)
