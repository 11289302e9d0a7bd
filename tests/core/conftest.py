"""Shared fixtures for the attention-core tests: every test starts from a seeded RNG."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
