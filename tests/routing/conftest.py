"""Routing tests run both ways a call may read the route table: from the tables (no copy
is ever made) and from the server's copy (made in the calling thread the moment the call
finds it missing or stale, so even a test's first call uses it)."""

from __future__ import annotations

import pytest

from fastagi.store import route_table
from tests.callcontrol.tenants import add_client, add_rate, default_plan_id


@pytest.fixture(params=["tables", "copy"])
def route_reads(request, monkeypatch):
    if request.param == "tables":
        monkeypatch.setattr(route_table.RouteTableCopy, "refresh", lambda self, engine: None)
    else:
        monkeypatch.setattr(route_table.RouteTableCopy, "refresh",
                            lambda self, engine: self.load_now(engine))
    return request.param


@pytest.fixture
def plan(engine):
    """The default plan selling 44 at 0.10/min, and the client acme on it."""
    add_rate(engine, default_plan_id(engine), "44", "0.10")    # what the client pays
    add_client(engine, "acme", balance="50", channel_limit=50)
    return default_plan_id(engine)


@pytest.fixture
def copy(engine):
    """This engine's copy, made again in the calling thread whenever a call finds it
    missing or stale (not in the background)."""
    made = route_table.copy_of(engine)
    made.refresh = lambda engine: made.load_now(engine)
    return made
