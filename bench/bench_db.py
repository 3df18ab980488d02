"""A throwaway database for a benchmark script: the schema, a rate for prefix 44 in the
default plan and one client `bench`; `drop()` removes it. On ICT_TEST_SERVER (default
root@127.0.0.1:3306), named `ict_bench_<kind>_<pid>`."""

from __future__ import annotations

import os

SERVER_URL = os.environ.get("ICT_TEST_SERVER", "mysql+pymysql://root@127.0.0.1:3306")


def make_database(kind: str, balance: int, channel_limit: int, pool_size: int,
                  timeout_s: int = 5):
    """(url, engine, drop) of a new database with the client `bench`; `timeout_s` bounds
    each connect and (at least 10 s) each statement."""
    from sqlalchemy import text

    from fastagi.db import migrate
    from fastagi.db.engine import make_engine

    name = f"ict_bench_{kind}_{os.getpid()}"
    url = f"{SERVER_URL}/{name}"
    admin = make_engine(SERVER_URL + "/", pool_size=1, timeout_s=timeout_s)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    migrate.upgrade(url)
    engine = make_engine(url, pool_size=pool_size, timeout_s=timeout_s)
    with engine.begin() as conn:
        plan = conn.execute(text("SELECT id FROM rate_plans WHERE is_default = 1")).scalar_one()
        conn.execute(text("INSERT INTO rates (rate_plan_id, prefix, rate_per_min) "
                          "VALUES (:p, '44', 0.01)"), {"p": plan})
        conn.execute(text("INSERT INTO clients (code, name, opening_balance, channel_limit) "
                          "VALUES ('bench', 'Bench', :b, :c)"),
                     {"b": balance, "c": channel_limit})

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()
    return url, engine, drop
