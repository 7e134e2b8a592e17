from __future__ import annotations

import pytest
from sqlmodel import Session

from tests.answering.web import World, make_world
from tests.conftest import FrozenClock


@pytest.fixture
def world(session: Session, clock: FrozenClock) -> World:
    """A school and a hospital in one town, an administration elsewhere in the region,
    their operators, and a VK question to the school."""
    return make_world(session, clock)
