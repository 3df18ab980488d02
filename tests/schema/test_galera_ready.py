"""What Galera needs of every table (docs/galera.md): InnoDB (the only engine it
replicates) and a primary key (rows are certified and applied by key; without one,
DELETEs and UPDATEs replicate unreliably and conflicts go unseen)."""

from __future__ import annotations

from sqlalchemy import text


def test_every_base_table_is_innodb_with_a_primary_key(engine):
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT t.table_name, t.engine,"
            " EXISTS (SELECT 1 FROM information_schema.table_constraints k"
            "   WHERE k.table_schema = t.table_schema AND k.table_name = t.table_name"
            "   AND k.constraint_type = 'PRIMARY KEY') AS has_pk"
            " FROM information_schema.tables t"
            " WHERE t.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'")).all()
    assert len(tables) >= 10
    assert [(name, eng) for name, eng, has_pk in tables
            if eng != "InnoDB" or not has_pk] == []
