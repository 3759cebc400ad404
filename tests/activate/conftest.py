"""Fixtures for the activate tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from customer720.settings import get_settings


@pytest.fixture
def cli_env(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Let a test call ``python -m activate`` in-process: what it exports is undone after."""
    for key, value in get_settings().tool_env().items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    return local_dir
