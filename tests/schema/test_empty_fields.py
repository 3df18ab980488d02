"""Empty optional fields mean what the comments say (schema/092): a client whose plan is
left empty (NULL, as Adminer's and phpMyAdmin's insert forms send it for a NULL-able
field) gets the default plan, on INSERT, INSERT ... SELECT and UPDATE alike."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.builders import default_plan_id, make_plan


def plan_of(conn, code: str) -> int:
    return conn.execute(text("SELECT rate_plan_id FROM clients WHERE code = :c"),
                        {"c": code}).scalar_one()


def test_an_empty_plan_is_the_default_plan_on_insert_and_update(engine):
    with engine.begin() as conn:
        default = default_plan_id(conn)
        other = make_plan(conn, "wholesale")
        # what the insert form sends when the field is left as it comes (NULL preselected)
        conn.execute(text("INSERT INTO clients (code, name, rate_plan_id, channel_limit, notes) "
                          "VALUES ('acme', 'Acme', NULL, '5', '')"))
        # a bulk load that leaves the plan out (refused with 1364 while the column was NOT NULL)
        conn.execute(text("INSERT INTO clients (code, name) SELECT CONCAT('bulk', seq), "
                          "CONCAT('Bulk ', seq) FROM seq_1_to_3"))
        conn.execute(text("UPDATE clients SET rate_plan_id = :p WHERE code = 'bulk1'"),
                     {"p": other})
        conn.execute(text("UPDATE clients SET rate_plan_id = NULL WHERE code = 'bulk1'"))
        assert [plan_of(conn, c) for c in ("acme", "bulk1", "bulk2", "bulk3")] == [default] * 4
        assert conn.execute(text("SELECT COUNT(*) FROM clients WHERE rate_plan_id IS NULL")
                            ).scalar_one() == 0


def test_an_empty_plan_without_a_default_plan_is_refused_in_words(engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clients (code, name) VALUES ('acme', 'Acme')"))
    with pytest.raises(DBAPIError, match="no default rate plan"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE rate_plans SET is_default = 0"))
            conn.execute(text("INSERT INTO clients (code, name, rate_plan_id) "
                              "VALUES ('bravo', 'Bravo', NULL)"))
    with pytest.raises(DBAPIError, match="no default rate plan"):
        with engine.begin() as conn:
            conn.execute(text("UPDATE rate_plans SET is_default = 0"))
            conn.execute(text("UPDATE clients SET rate_plan_id = NULL WHERE code = 'acme'"))
