"""Shared pytest fixtures: where the golden data lives, and deterministic seeds."""

from __future__ import annotations

import os
import pathlib
import random

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def shared_dir() -> pathlib.Path:
    """`../shared` beside the checkout (CI puts it there); SCENEGEN_SHARED overrides."""
    return pathlib.Path(os.environ.get("SCENEGEN_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
    """`../shared/reference` with the official golden fixtures; skips the test when absent."""
    path = shared_dir() / "reference"
    if not path.is_dir():
        pytest.skip(f"golden reference data not found at {path}")
    return path


@pytest.fixture(scope="session")
def samples_dir() -> pathlib.Path:
    """`../shared/data/3dfuture_samples` (real scenes, research-only: never copy into the repo)."""
    path = shared_dir() / "data" / "3dfuture_samples"
    if not path.is_dir():
        pytest.skip(f"3D-FUTURE samples not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(0)
