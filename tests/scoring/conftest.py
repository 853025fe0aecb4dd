"""The e2e CLI runner for the scoring tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def cli() -> Any:
    from tests.e2e.conftest import Cli

    return Cli()
