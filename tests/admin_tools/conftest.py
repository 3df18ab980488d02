"""Fixtures of the real-browser test of the admin tools (tests/support/admin_tools.py).

One Chromium and one `php -S` per tool for the whole session (seconds saved per test);
each test gets its own database (the `db_url` clone), its own DBA account with the grants
docs/admin-sql.md documents, and a browser session without cookies. Nothing is skipped:
a machine without the tools fails here, saying what to install.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.support import admin_tools
from tests.support.database import SERVER_URL

DBA_PASSWORD = "dba password 19"


@pytest.fixture(scope="session")
def browser_tools_present():
    missing = admin_tools.missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: {admin_tools.INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def chromium(browser_tools_present):
    driver = admin_tools.start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def tool_servers(browser_tools_present, tmp_path_factory):
    server = make_url(SERVER_URL)
    servers = {}
    try:
        servers["adminer"] = admin_tools.serve_adminer(tmp_path_factory.mktemp("adminer"))
        servers["phpmyadmin"] = admin_tools.serve_phpmyadmin(
            tmp_path_factory.mktemp("phpmyadmin"), server.host or "127.0.0.1",
            server.port or 3306)
        yield servers
    finally:
        for running in servers.values():
            running.stop()


TOOLS = {"adminer": admin_tools.Adminer, "phpmyadmin": admin_tools.PhpMyAdmin}


@pytest.fixture(params=sorted(TOOLS))
def tool(request, chromium, tool_servers) -> admin_tools.AdminTool:
    """Adminer, then phpMyAdmin, in the session's browser (logged in by the test)."""
    server = make_url(SERVER_URL)
    used = TOOLS[request.param](chromium, tool_servers[request.param].url,
                                server.host or "127.0.0.1", server.port or 3306)
    yield used
    # Shown with the test's output (-rA, or when it fails): where the time went.
    print(f"{used.name} steps (s): {used.timings}")


@pytest.fixture
def dba(engine, db_url):
    """A DBA account of this test's database with the documented grants (docs/admin-sql.md
    'Administering with Adminer and phpMyAdmin'): (account, password, database)."""
    database = make_url(db_url).database
    account = f"{database[:24]}_dba"
    with engine.begin() as conn:
        conn.execute(text("DROP USER IF EXISTS :a@'%'"), {"a": account})
        conn.execute(text("CREATE USER :a@'%' IDENTIFIED BY :p"),
                     {"a": account, "p": DBA_PASSWORD})
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON "
                             f"`{database}`.* TO '{account}'@'%%'")
        conn.exec_driver_sql(f"GRANT SELECT ON mysql.proc TO '{account}'@'%%'")
    try:
        yield account, DBA_PASSWORD, database
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP USER IF EXISTS :a@'%'"), {"a": account})
