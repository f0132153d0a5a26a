"""Test-wide settings: torch on one CPU thread (30-600x faster than two for the small ops here), hypothesis profiles."""

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(int(os.environ.get("FLS_TORCH_THREADS", "1")))

settings.register_profile(  # CI's profile: derandomized, so a run is repeatable
    "fast", max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
