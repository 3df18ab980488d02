"""Benchmark: what the "blocked by a suspended reseller" check (schema 163) costs the
views Asterisk reads on every REGISTER, INVITE and Queue(), and what suspending and
reactivating a reseller costs.

    .venv/bin/python bench/reseller_views.py [--resellers 1000] [--per-reseller 10]
                                             [--lookups 5000] [--server URL]

Creates its own database `ict_bench_rviews_<pid>`: --resellers resellers under master,
each with --per-reseller clients (10,000 clients under 1,000 resellers by default), every
client one SIP extension. In the same run and connection, random single-endpoint reads
(`SELECT * FROM ps_endpoints WHERE id = ?`, as res_config_odbc asks) of the shipped view
and of the view as it was before 163 (a copy named ps_endpoints_flat); then the same for
ps_auths; then a whole-table read of each; then CALL suspend_client / activate_client of
one reseller. Prints p50/p99 per read in ms.
Drops the database at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from sqlalchemy import text

from fastagi.db import migrate
from fastagi.db.engine import make_engine

FLAT = {
    "ps_endpoints": (
        "SELECT e.sip_username AS id, 'transport-udp' AS transport, e.sip_username AS aors,"
        " e.sip_username AS auth, CONCAT('client-', c.code) AS context, 'all' AS disallow,"
        " 'ulaw,alaw,g722' AS allow, e.callerid AS callerid, c.code AS accountcode,"
        " CAST(NULL AS CHAR(80)) AS mailboxes, 'no' AS direct_media, 'yes' AS rtp_symmetric,"
        " 'yes' AS force_rport, 'yes' AS rewrite_contact, 'rfc4733' AS dtmf_mode,"
        " 'no' AS trust_id_inbound, 'username' AS identify_by"
        " FROM extensions e JOIN clients c ON c.id = e.client_id"
        " WHERE e.status = 'active' AND c.status = 'active' AND e.md5_cred IS NOT NULL"),
    "ps_auths": (
        "SELECT e.sip_username AS id, 'md5' AS auth_type, e.sip_username AS username,"
        " e.md5_cred AS md5_cred, 'asterisk' AS realm"
        " FROM extensions e JOIN clients c ON c.id = e.client_id"
        " WHERE e.status = 'active' AND c.status = 'active' AND e.md5_cred IS NOT NULL"),
}


def build(engine, resellers: int, per: int) -> list[str]:
    """The tree; returns every SIP username."""
    with engine.begin() as conn:
        master = conn.execute(text("SELECT id FROM clients WHERE code = 'master'")).scalar_one()
        for r in range(resellers):
            rid = conn.execute(text("INSERT INTO clients (code, name, parent_id)"
                                    " VALUES (:c, :c, :m)"), {"c": f"r{r}", "m": master}).lastrowid
            plan = conn.execute(text("INSERT INTO rate_plans (name, owner_client_id)"
                                     " VALUES (:n, :r)"), {"n": f"plan r{r}", "r": rid}).lastrowid
            conn.execute(text("INSERT INTO clients (code, name, parent_id, rate_plan_id)"
                              " VALUES (:c, :c, :r, :p)"),
                         [{"c": f"r{r}c{k}", "r": rid, "p": plan} for k in range(per)])
        conn.execute(text(
            "INSERT INTO extensions (client_id, exten, sip_password)"
            " SELECT id, '1001', 'bench-secret-1' FROM clients WHERE code LIKE 'r%c%'"))
        return [r[0] for r in conn.execute(text("SELECT sip_username FROM extensions"))]


def lookups(conn, view: str, ids: list[str]) -> list[float]:
    sql = text(f"SELECT * FROM {view} WHERE id = :id")
    out = []
    for sip in ids:
        start = time.perf_counter()
        conn.execute(sql, {"id": sip}).all()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resellers", type=int, default=1000)
    parser.add_argument("--per-reseller", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--server", default=os.environ.get(
        "ICT_TEST_SERVER", "mysql+pymysql://root@127.0.0.1:3306"))
    args = parser.parse_args()
    name = f"ict_bench_rviews_{os.getpid()}"
    admin = make_engine(args.server + "/", pool_size=1)
    url = f"{args.server}/{name}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    try:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=2)
        start = time.perf_counter()
        ids = build(engine, args.resellers, args.per_reseller)
        print(f"tree: {args.resellers} resellers x {args.per_reseller} clients,"
              f" {len(ids)} extensions, built in {time.perf_counter() - start:.1f} s")
        with engine.begin() as conn:
            for view, body in FLAT.items():
                conn.execute(text(f"CREATE VIEW {view}_flat AS {body}"))
        rng = random.Random(7)
        sample = [rng.choice(ids) for _ in range(args.lookups)]
        with engine.connect() as conn:
            for view in ("ps_endpoints", "ps_auths"):
                for _ in range(2):   # warm both, then measure alternately
                    lookups(conn, view, sample[:200])
                    lookups(conn, view + "_flat", sample[:200])
                shipped = lookups(conn, view, sample)
                flat = lookups(conn, view + "_flat", sample)
                print(f"{view} WHERE id = ?: shipped p50 {p(shipped, 50):.3f} ms"
                      f" p99 {p(shipped, 99):.3f} ms | before 163 p50 {p(flat, 50):.3f} ms"
                      f" p99 {p(flat, 99):.3f} ms")
                for v in (view, view + "_flat"):
                    start = time.perf_counter()
                    n = len(conn.execute(text(f"SELECT * FROM {v}")).all())
                    print(f"  SELECT * FROM {v}: {n} rows in"
                          f" {(time.perf_counter() - start) * 1000:.1f} ms")
        with engine.connect() as conn:
            for call in ("CALL suspend_client('r0')", "CALL activate_client('r0')"):
                start = time.perf_counter()
                conn.execute(text(call)).all()
                conn.commit()
                print(f"{call}: {(time.perf_counter() - start) * 1000:.1f} ms"
                      f" ({args.per_reseller} clients below)")
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


if __name__ == "__main__":
    main()
