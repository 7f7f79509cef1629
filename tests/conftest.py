from pathlib import Path

import pytest
import torch

from atomistic import load_potential
from atomistic.testing import TEST_DEVICE

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "cases" / "models" / "cu_emt.safetensors"


@pytest.fixture(scope="session")
def model():
    """The shipped Cu committee on the test device, loaded once (tests only read it)."""
    torch.set_flush_denormal(True)
    return load_potential(SHIPPED_MODEL, device=TEST_DEVICE)
