"""Resellers on a private 3-node Galera cluster: two real `serve` processes on two nodes,
a burst of simultaneous calls by siblings under one reseller with few channels and under
one with little credit. Row locks are local to a node; what holds the reseller's limits
across nodes is the admission's write to every level's account (certification conflict,
docs/galera.md). Observed on every node: 0 over-admission and 0 overdraft at every level,
every answer definite, every call settled through the OTHER node, every ledger exact.

Tree: master -> chan (5 channels) -> c1, c2 and master -> cred (2.10 of credit) -> k1, k2;
chan and cred pay the operator 0.60/min (1/1) and their clients pay them 1.20/min: a leaf
call of at most 60 s reserves 0.60 at `cred`, so `cred` admits 3 of 60 s and a 4th of 30 s
at once (2.10), never a 5th.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest_twisted
from sqlalchemy import text
from twisted.internet.defer import ensureDeferred, gatherResults

from fastagi import channel_vars as v, reasons
from tests.resellers.world import client_under, ledger_gap, live_at, plan_of

from .load import attempt
from .test_galera import dispose, engines, serve_on, stop, wait_replicated

NUMBER = "15550100"
BURST = 60
ROUNDS = 2
PARENT = {"c1": "chan", "c2": "chan", "k1": "cred", "k2": "cred"}


def build(engine) -> None:
    op = plan_of(engine, None, "op", {"1555": ("0.60", "0", 1, 1)})
    client_under(engine, "chan", None, op, balance="100", channel_limit=5)
    client_under(engine, "cred", None, op, balance="2.10", channel_limit=50)
    for reseller, kids in (("chan", ("c1", "c2")), ("cred", ("k1", "k2"))):
        plan = plan_of(engine, reseller, f"{reseller}-sells", {"1555": ("1.20", "0", 1, 1)})
        for kid in kids:
            client_under(engine, kid, reseller, plan, balance="100", channel_limit=50)


@pytest_twisted.ensureDeferred
async def test_siblings_on_two_nodes_never_over_admit_or_overdraw_their_reseller(
        galera_db, galera_cluster):
    first, second, _ = galera_cluster.nodes
    all_engines = engines(galera_cluster, galera_db)
    build(all_engines[0])
    servers = {"A": serve_on(first, galera_db, "A"), "B": serve_on(second, galera_db, "B")}
    other = {"A": "B", "B": "A"}
    codes = ("c1", "c2", "k1", "k2", "chan", "cred")
    try:
        for round_ in range(ROUNDS):
            burst = [(("c1", "k1", "c2", "k2")[i % 4], "AB"[i % 2]) for i in range(BURST)]
            got = await gatherResults([
                ensureDeferred(attempt(servers[s].port, s, "authorize", code, NUMBER,
                                       timeout=30)) for code, s in burst])
            assert all(a.closed and (a.result == v.ALLOW or a.reason in (
                reasons.CHANNEL_LIMIT, reasons.NO_CREDIT)) for a in got), [str(a) for a in got]
            allowed = [(code, a) for a, (code, _) in zip(got, burst) if a.result == v.ALLOW]
            under = {r: sum(PARENT[code] == r for code, _ in allowed) for r in ("chan", "cred")}
            if round_ == 0:   # nothing settled yet: exactly the limits
                assert under == {"chan": 5, "cred": 4}
            for engine in all_engines:
                wait_replicated(engine)
                assert live_at(engine, "chan")[0] == under["chan"] <= 5
                live, reserved = live_at(engine, "cred")
                assert live == under["cred"] <= 4
                assert reserved <= Decimal("2.10"), "overdraft of cred"
            rng = random.Random(round_)
            settles = [ensureDeferred(attempt(
                servers[other[a.server]].port, other[a.server], "settle",
                a.answer[v.CALL_ID], f"ms={rng.randint(0, 20) * 1000}", "ANSWER"))
                for _, a in allowed]
            for settled in await gatherResults(settles):
                assert settled.result == v.ALLOW, str(settled)
        for engine in all_engines:
            wait_replicated(engine)
            assert {c: ledger_gap(engine, c) for c in codes} == {c: 0 for c in codes}
            assert {c: live_at(engine, c) for c in codes} == {c: (0, 0) for c in codes}
            with engine.connect() as conn:
                assert conn.execute(text(
                    "SELECT a.balance FROM client_accounts a JOIN clients c"
                    " ON c.id = a.client_id WHERE c.code = 'cred'")).scalar_one() >= 0
    finally:
        logs = stop(servers.values())
        dispose(all_engines)
        print("".join(line + "\n" for line in logs.splitlines()
                      if " ERROR " in line or " WARNING " in line)[-20000:])
