"""The ps_* views against the real MariaDB: the right endpoints, auths and aors for active
clients' active extensions, none for suspended clients or disabled extensions, and back
on reactivation. Plus the cdr and dids tables Asterisk and the generator rely on."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from fastagi.dialplan.generate import render
from fastagi.store.call_watch import billsec_ms
from fastagi.store.dialplan import load_clients


def add_client(conn, code, status="active"):
    conn.execute(text("INSERT INTO clients (code, name, status) VALUES (:c, :n, :s)"),
                 {"c": code, "n": code.title(), "s": status})
    return conn.execute(text("SELECT id FROM clients WHERE code = :c"), {"c": code}).scalar()


def add_extension(conn, client_id, exten, password="s3cret", status="active", callerid=None):
    conn.execute(text("INSERT INTO extensions (client_id, exten, sip_password, status, callerid)"
                      " VALUES (:c, :e, :p, :s, :cid)"),
                 {"c": client_id, "e": exten, "p": password, "s": status, "cid": callerid})


def ids(conn, view):
    return sorted(r[0] for r in conn.execute(text(f"SELECT id FROM {view}")))


@pytest.fixture
def tenants(engine):
    with engine.begin() as conn:
        acme = add_client(conn, "acme")
        beta = add_client(conn, "beta")
        add_extension(conn, acme, "1001", callerid='"Alice" <1001>')
        add_extension(conn, acme, "1002", status="disabled")
        add_extension(conn, beta, "2001")
    return {"acme": acme, "beta": beta}


VIEWS = ("ps_endpoints", "ps_auths", "ps_aors")


def test_active_extensions_only(engine, tenants):
    with engine.connect() as conn:
        for view in VIEWS:
            assert ids(conn, view) == ["acme-1001", "beta-2001"], view


def test_endpoint_row_is_what_asterisk_needs(engine, tenants):
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM ps_endpoints WHERE id = 'acme-1001'")) \
            .mappings().one()
    assert row["context"] == "client-acme"
    assert row["accountcode"] == "acme"
    assert row["aors"] == row["auth"] == "acme-1001"
    assert row["transport"] == "transport-udp"
    assert (row["disallow"], row["callerid"]) == ("all", '"Alice" <1001>')
    assert "mailboxes" in row and row["mailboxes"] is None
    assert row["direct_media"] == "no"


def test_auth_row_authenticates_with_the_password(engine, tenants):
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM ps_auths WHERE id = 'acme-1001'")).mappings().one()
    assert (row["auth_type"], row["username"], row["realm"]) == ("md5", "acme-1001", "asterisk")
    expected = hashlib.md5(b"acme-1001:asterisk:s3cret").hexdigest()
    assert row["md5_cred"] == expected


def test_aor_row(engine, tenants):
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM ps_aors WHERE id = 'beta-2001'")).mappings().one()
    assert row["max_contacts"] == 1 and row["remove_existing"] == "yes"


def test_pjsip_show_contacts_query_runs_on_the_aors_view(engine, tenants):
    # What `pjsip show contacts` sends to every aor family (res_pjsip/location.c);
    # without a contact column MariaDB answered "Unknown column 'contact'".
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM ps_aors WHERE contact != '' ORDER BY contact"))
        assert rows.all() == []


def test_suspension_hides_and_reactivation_restores(engine, tenants):
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE code = 'acme'"))
    with engine.connect() as conn:
        for view in VIEWS:
            assert ids(conn, view) == ["beta-2001"], view
            assert conn.execute(text(f"SELECT COUNT(*) FROM {view} WHERE id = 'acme-1001'")) \
                .scalar() == 0
    with engine.begin() as conn:
        conn.execute(text("UPDATE clients SET status = 'active' WHERE code = 'acme'"))
    with engine.connect() as conn:
        for view in VIEWS:
            assert ids(conn, view) == ["acme-1001", "beta-2001"], view


def test_disabled_extension_hides_and_comes_back(engine, tenants):
    with engine.begin() as conn:
        conn.execute(text("UPDATE extensions SET status = 'active' WHERE sip_username = 'acme-1002'"))
    with engine.connect() as conn:
        assert ids(conn, "ps_endpoints") == ["acme-1001", "acme-1002", "beta-2001"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE extensions SET status = 'disabled' WHERE sip_username = 'acme-1001'"))
    with engine.connect() as conn:
        assert ids(conn, "ps_endpoints") == ["acme-1002", "beta-2001"]


def test_extension_without_password_is_not_an_endpoint(engine, tenants):
    with engine.begin() as conn:
        add_extension(conn, tenants["beta"], "2002", password=None)
    with engine.connect() as conn:
        for view in VIEWS:
            assert "beta-2002" not in ids(conn, view)


def test_ps_contacts_takes_what_asterisk_writes(engine):
    # the column list res_pjsip stores for a contact
    row = {"id": "acme-1001;@0f1e2d", "uri": "sip:acme-1001@198.51.100.7:5060",
           "expiration_time": 1900000000, "qualify_frequency": 60, "outbound_proxy": "",
           "path": "", "user_agent": "Yealink", "qualify_timeout": 3.0,
           "reg_server": "pbx1", "authenticate_qualify": "no", "via_addr": "198.51.100.7",
           "via_port": 5060, "call_id": "abc@198.51.100.7", "endpoint": "acme-1001",
           "prune_on_boot": "no", "qualify_2xx_only": "no"}
    cols = ", ".join(row)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO ps_contacts ({cols}) VALUES "
                          f"({', '.join(':' + c for c in row)})"), row)
        assert conn.execute(text("SELECT endpoint FROM ps_contacts")).scalar() == "acme-1001"
        conn.execute(text("DELETE FROM ps_contacts WHERE id = :i"), {"i": row["id"]})


def test_cdr_takes_an_adaptive_odbc_insert(engine):
    # cdr_adaptive_odbc leaves empty dates out of the INSERT: answer/end become NULL
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp,"
            " lastdata, duration, billsec, disposition, amaflags, accountcode, uniqueid,"
            " linkedid, peeraccount, sequence, userfield, end) VALUES ({ts '2025-01-02 03:04:05'},"
            " '\"Alice\" <1001>', '1001', '0044207', 'client-acme', 'PJSIP/acme-1001-0001', '',"
            " 'Hangup', '21', 3, 0, 'NO ANSWER', 'DOCUMENTATION', 'acme', '1700000000.1',"
            " '1700000000.1', '', 1, '', {ts '2025-01-02 03:04:08'})"))
        row = conn.execute(text("SELECT accountcode, answer, end FROM cdr")).one()
    assert row[0] == "acme" and row[1] is None and row[2] is not None


@pytest.mark.parametrize("written, stored, talk_ms", [
    # cdr_adaptive_odbc, DECIMAL column (cdr/cdr_adaptive_odbc.c, odbc_log): billsec is
    # answer-to-end in microseconds as a double, printed "%*.*lf" with the column's
    # DECIMAL_DIGITS as width and NUM_PREC_RADIX (10) as precision
    ("%*.*f" % (6, 10, 4568123 / 1e6), "4.568123", 4569),
    ("%*.*f" % (6, 10, 4568000 / 1e6), "4.568000", 4568),
    ("%*.*f" % (6, 10, 300000 / 1e6), "0.300000", 300),
    ("%*.*f" % (6, 10, 0.0), "0.000000", 0),
    ("%*.*f" % (6, 10, 3600000001 / 1e6), "3600.000001", 3600001),
])
def test_cdr_billsec_keeps_the_microseconds_reconciliation_bills(engine, written, stored,
                                                                 talk_ms):
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO cdr (calldate, billsec, disposition, accountcode, uniqueid)"
            f" VALUES ({{ts '2025-01-02 03:04:05'}}, {written}, 'ANSWERED', 'acme', 'u.1')"))
        billsec = conn.execute(text("SELECT billsec FROM cdr")).scalar()
    assert str(billsec) == stored
    assert billsec_ms(billsec) == talk_ms


def test_did_must_ring_an_extension_of_the_same_client(engine, tenants):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dids (client_id, did, exten) VALUES (:c, '442071234567', "
                          "'1001')"), {"c": tenants["acme"]})
    with pytest.raises((IntegrityError, OperationalError)):
        with engine.begin() as conn:  # beta has no extension 1001
            conn.execute(text("INSERT INTO dids (client_id, did, exten) VALUES (:c, '33140000000',"
                              " '1001')"), {"c": tenants["beta"]})
    with pytest.raises((IntegrityError, OperationalError)):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO dids (client_id, did, exten) VALUES (:c, '+3314',"
                              " '2001')"), {"c": tenants["beta"]})


def test_generator_reads_the_database(engine, tenants):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dids (client_id, did, exten) VALUES (:c, '442071234567', "
                          "'1001')"), {"c": tenants["acme"]})
        conn.execute(text("UPDATE clients SET status = 'suspended' WHERE code = 'beta'"))
    clients = {c.code: c for c in load_clients(engine)}
    assert set(clients) == {"master", "acme", "beta"}
    # every extension is in the context, whatever its status: realtime decides who may call
    assert [e.endpoint for e in clients["acme"].extensions] == ["acme-1001", "acme-1002"]
    assert clients["beta"].status == "suspended" and clients["beta"].extensions
    assert [(d.did, d.endpoint) for d in clients["acme"].dids] == [("442071234567", "acme-1001")]
    text_ = render(list(clients.values()))
    assert "[client-master]" in text_ and "[client-beta]" in text_
    assert "Gosub(ict-inbound,s,1(acme,442071234567,acme-1001))" in text_
