"""Fixtures of the unit tests: the real services on fresh fakes."""

from __future__ import annotations

import pytest

from tests.unit.fakes import World, make_world


@pytest.fixture
def world() -> World:
    return make_world()
