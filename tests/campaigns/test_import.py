"""`ictcontact contacts import`: good lines land, every bad line is reported with its line
number and reason, and the import never stops at one."""

from __future__ import annotations

import io

import pytest

from fastagi import cli
from fastagi.campaigns.contact_rows import BadLine, ContactRow, check_lines, normalize_phone
from tests.campaigns.helpers import add_campaign, add_client_with_rate
from tests.support.sql import execute, rows

CSV = """phone,first_name,last_name,time_zone
+44 20 7123 4501,Ann,One,Europe/London
442071234502,Bob,Two,
44207123450x,Bad,Number,
+442071234501,Ann,Again,
442071234503,Dnc,Client,
442071234504,Dnc,Operator,
442071234505,Zone,Bad,Mars/Olympus
442071234506,Old,Contact,
"too,many",fields,x,y,z
442071234507,"Quoted, name",Seven,America/New_York
"""


@pytest.mark.parametrize("raw, expected", [
    ("+44 (20) 7123-4567", "+442071234567"),
    ("442071234567", "442071234567"),
    ("44.20.7123", "44207123"),
    ("44207x", None), ("", None), ("+", None), ("1", None), ("++4420", None),
])
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


def test_check_lines_reports_each_bad_line_with_its_number():
    items = list(check_lines(io.StringIO(CSV)))
    bad = {i.line: i.kind for i in items if isinstance(i, BadLine)}
    good = [i.phone for i in items if isinstance(i, ContactRow)]
    assert bad == {4: "bad number", 5: "duplicate", 8: "bad field", 10: "bad field"}
    assert good == ["+442071234501", "442071234502", "442071234503", "442071234504",
                    "442071234506", "442071234507"]


def test_import_inserts_good_lines_and_reports_the_rest(db_url, engine, capsys, _write):
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)
    execute(engine, "INSERT INTO do_not_call (client_id, phone) VALUES (:c, '442071234503')",
            c=client)
    execute(engine, "INSERT INTO do_not_call (client_id, phone) VALUES (NULL, '+442071234504')")
    execute(engine, "INSERT INTO contacts (client_id, campaign_id, phone) "
                    "VALUES (:c, :g, '+442071234506')", c=client, g=campaign)
    path = _write(CSV)
    assert cli.main(["contacts", "import", "--campaign", "acme/promo", path,
                     "--db", db_url, "--progress", "never"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:-1] == [
        "line 4: bad number: '44207123450x' is not 2-31 digits with an optional +",
        "line 5: duplicate: +442071234501 is also on line 2",
        "line 6: on the do-not-call list: 442071234503",
        "line 7: on the do-not-call list: 442071234504",
        "line 8: bad field: time_zone 'Mars/Olympus' is not an IANA time zone (e.g. Europe/London)",
        "line 9: duplicate: 442071234506 is already in the campaign",
        "line 10: bad field: 5 fields where the header names 4",
    ]
    assert out[-1] == ("acme/promo: imported 3 contacts; skipped 7 lines "
                       "(2 bad field, 1 bad number, 2 duplicate, 2 on the do-not-call list)")
    loaded = rows(engine, "SELECT phone, first_name, time_zone, status FROM contacts "
                          "WHERE campaign_id = :g ORDER BY id", g=campaign)
    assert [tuple(r) for r in loaded] == [
        ("+442071234506", None, None, "new"),
        ("+442071234501", "Ann", "Europe/London", "new"),
        ("442071234502", "Bob", None, "new"),
        ("442071234507", "Quoted, name", "America/New_York", "new"),
    ]


def test_running_the_same_import_again_adds_nothing(db_url, engine, capsys, _write):
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)
    path = _write("phone\n442071234501\n442071234502\n")
    argv = ["contacts", "import", "--campaign", "acme/promo", path, "--db", db_url]
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "acme/promo: imported 0 contacts; skipped 2 lines (2 duplicate)"
    assert rows(engine, "SELECT COUNT(*) FROM contacts WHERE campaign_id = :g",
                g=campaign)[0][0] == 2


@pytest.mark.parametrize("campaign, content, code, message", [
    ("nobody/promo", "phone\n4420\n", 1, "no client with code 'nobody'"),
    ("acme/other", "phone\n4420\n", 1, "client 'acme' has no campaign named 'other'"),
    ("acme", "phone\n4420\n", 2, "--campaign must be CLIENT/CAMPAIGN"),
    ("acme/promo", "number,name\n4420,x\n", 2, "unknown column(s) 'number', 'name'"),
    ("acme/promo", "", 2, "the file is empty"),
])
def test_refusals_are_one_line(db_url, engine, capsys, _write, campaign, content, code, message):
    add_campaign(engine, add_client_with_rate(engine, "acme"))
    assert cli.main(["contacts", "import", "--campaign", campaign, _write(content),
                     "--db", db_url]) == code
    assert message in capsys.readouterr().err


def test_a_plain_insert_of_a_do_not_call_number_is_marked(engine):
    client = add_client_with_rate(engine, "acme")
    campaign = add_campaign(engine, client)
    execute(engine, "INSERT INTO do_not_call (client_id, phone) VALUES (NULL, '+4420111')")
    execute(engine, "INSERT INTO contacts (client_id, campaign_id, phone) VALUES (:c, :g, '4420111')",
            c=client, g=campaign)
    assert [tuple(r) for r in rows(engine, "SELECT status, last_reason FROM contacts")] == [
        ("do-not-call", "on a do-not-call list")]


def test_an_emergency_number_is_refused_per_line_and_never_lands(db_url, engine, capsys, _write):
    campaign = add_campaign(engine, add_client_with_rate(engine, "acme"))
    path = _write("phone\n911\n+112\n442071234501\n9110\n")
    assert cli.main(["contacts", "import", "--campaign", "acme/promo", path,
                     "--db", db_url, "--progress", "never"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "line 2: emergency number: 911 is an emergency number; a campaign never dials one",
        "line 3: emergency number: +112 is an emergency number; a campaign never dials one",
        "acme/promo: imported 2 contacts; skipped 2 lines (2 emergency number)",
    ]
    # a whole-number match: 9110 is an ordinary number
    assert [r[0] for r in rows(engine, "SELECT phone FROM contacts WHERE campaign_id = :g "
                                       "ORDER BY id", g=campaign)] == ["442071234501", "9110"]


def test_the_emergency_numbers_are_the_servers_setting(db_url, engine, capsys, _write,
                                                       monkeypatch):
    campaign = add_campaign(engine, add_client_with_rate(engine, "acme"))
    monkeypatch.setenv("ICTCONTACT_EMERGENCY_NUMBERS", "000,911")
    path = _write("phone\n000\n112\n")
    assert cli.main(["contacts", "import", "--campaign", "acme/promo", path,
                     "--db", db_url, "--progress", "never"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("line 2: emergency number: 000")
    assert [r[0] for r in rows(engine, "SELECT phone FROM contacts WHERE campaign_id = :g",
                               g=campaign)] == ["112"]
    monkeypatch.setenv("ICTCONTACT_EMERGENCY_NUMBERS", "9x9")
    assert cli.main(["contacts", "import", "--campaign", "acme/promo", path,
                     "--db", db_url]) == 2
    assert "emergency numbers must be 2-10 digits" in capsys.readouterr().err


@pytest.fixture
def _write(tmp_path):
    def write(content: str) -> str:
        path = tmp_path / "contacts.csv"
        path.write_text(content, encoding="utf-8")
        return str(path)
    return write
