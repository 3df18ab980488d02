"""Routing tests run both ways a call may read the route table: from the tables (no copy
is ever made) and from the server's copy (made in the calling thread the moment the call
finds it missing or stale, so even a test's first call uses it)."""

from __future__ import annotations

import pytest

from fastagi.store import route_table


@pytest.fixture(params=["tables", "copy"])
def route_reads(request, monkeypatch):
    if request.param == "tables":
        monkeypatch.setattr(route_table.RouteTableCopy, "refresh", lambda self, engine: None)
    else:
        monkeypatch.setattr(route_table.RouteTableCopy, "refresh",
                            lambda self, engine: self.load_now(engine))
    return request.param
