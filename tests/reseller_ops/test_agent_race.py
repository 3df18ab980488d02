"""An agent login racing its reseller's suspension never stays logged in: the login
share-locks the levels above its client, the suspension's trigger ends the subtree's
sessions, so one waits for the other. Real MariaDB, two threads at a barrier."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from fastagi.db.engine import make_engine
from fastagi.store import agents
from tests.reseller_ops.tree import PIN, build_tree
from tests.support.sql import execute, rows


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def run_together(*works):
    barrier = threading.Barrier(len(works))
    results, errors = [None] * len(works), []

    def runner(index, work):
        barrier.wait()
        try:
            results[index] = work()
        except Exception as exc:  # collected and asserted by the test
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, w)) for i, w in enumerate(works)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, errors


def test_a_login_racing_its_resellers_suspension_never_stays_logged_in(db_url):
    engine = make_engine(db_url, pool_size=4)
    try:
        build_tree(engine)
        outcomes = set()
        for _ in range(12):
            execute(engine, "CALL activate_client('r1')")
            results, errors = run_together(
                lambda: agents.attempt_login(engine, agents.Request("g1", "g1-1001"), "501",
                                             PIN, now()),
                lambda: agents.attempt_login(engine, agents.Request("s1", "s1-1001"), "501",
                                             PIN, now()),
                lambda: execute(engine, "CALL suspend_client('r1')"))
            assert errors == []
            outcomes.add(results[0].reason)
            assert results[1].reason == "ok"          # the sibling is never refused
            open_ = rows(engine, "SELECT c.code FROM agent_sessions s JOIN clients c"
                                 " ON c.id = s.client_id WHERE s.ended_at IS NULL")
            assert [r[0] for r in open_] == ["s1"]    # g1's session never outlives it
        assert outcomes <= {"ok", "client-suspended"}
    finally:
        engine.dispose()
