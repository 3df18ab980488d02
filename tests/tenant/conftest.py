"""Fixtures for client database logins: real accounts on the shared server.

Accounts, roles and the tenant database are server-wide, so every name here derives from
the test's own database (`ict_test_<pid>_<n>`): parallel runs never collide. After each
test `drop_tenant_world()` removes what grant_db_login created, and any account left with
the test's prefix (one a failing test created by other means) is dropped too. Accounts
not made by this test are never touched.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.tenant.helpers import Tenants, prefix_for, drop_accounts_with_prefix
from tests.tenant.resellers import Resellers


@pytest.fixture
def world(engine, db_url):
    """Two clients whose names collide everywhere, each with an admin, a supervisor and an
    agent user that have database logins (see helpers.Tenants)."""
    database = make_url(db_url).database
    prefix = prefix_for(database)
    try:
        yield Tenants.create(engine, db_url, prefix)
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(engine, prefix)


@pytest.fixture
def account_prefix(engine, db_url):
    """The prefix every account this test creates must start with; cleaned up after."""
    database = make_url(db_url).database
    prefix = prefix_for(database)
    try:
        yield prefix
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(engine, prefix)


@pytest.fixture
def resellers(engine, db_url):
    """A reseller hierarchy with logins at every level (see tests/tenant/resellers.py)."""
    database = make_url(db_url).database
    prefix = prefix_for(database)
    try:
        yield Resellers.create(engine, db_url, prefix)
    finally:
        with engine.begin() as conn:
            conn.execute(text("CALL drop_tenant_world()"))
        drop_accounts_with_prefix(engine, prefix)
