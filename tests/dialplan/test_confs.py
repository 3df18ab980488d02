"""Every shipped .conf parses, with pyst2 where it can and the strict reader everywhere,
and the files agree with each other (names one file uses are defined in the other)."""

from __future__ import annotations

import configparser
import re

import pytest
from asterisk.config import Config

from fastagi.dialplan.confparse import ConfError, parse_conf, read_conf
from fastagi.services import ServeConfig
from tests.dialplan.helpers import CONF_DIR, DIALPLAN

CONFS = sorted(CONF_DIR.glob("*.conf"))
# pyst2 cannot read #include (extensions.conf); every other file it must read.
PYST2_UNREADABLE = {"extensions.conf"}


def sections_by_type(conf):
    """pjsip.conf: (name, type) -> section."""
    return {(s.name, s.get("type")): s for s in conf.sections}


def test_the_sample_set_is_complete():
    names = {p.name for p in CONFS}
    assert {"extensions.conf", "pjsip.conf", "sorcery.conf", "extconfig.conf",
            "res_odbc.conf", "cdr.conf", "cdr_adaptive_odbc.conf", "manager.conf",
            "modules.conf"} <= names


@pytest.mark.parametrize("path", CONFS + [DIALPLAN], ids=lambda p: p.name)
def test_strict_parse(path):
    conf = read_conf(path)
    assert conf.sections, f"{path.name} has no sections"


@pytest.mark.parametrize("path", [p for p in CONFS if p.name not in PYST2_UNREADABLE]
                         + [DIALPLAN], ids=lambda p: p.name)
def test_pyst2_parses(path):
    parsed = Config(str(path))
    assert [c.name for c in parsed.categories] == read_conf(path).names()


@pytest.mark.parametrize("path", CONFS, ids=lambda p: p.name)
def test_every_file_is_commented(path):
    assert path.read_text().lstrip().startswith(";"), f"{path.name} starts without a comment"


def test_odbc_ini_parses_and_names_the_dsn():
    ini = configparser.ConfigParser(comment_prefixes=(";", "#"))
    ini.read(CONF_DIR / "odbc.ini")
    dsn = read_conf(CONF_DIR / "res_odbc.conf").section("asterisk").get("dsn")
    assert ini.has_section(dsn)


@pytest.mark.parametrize("text", [
    "exten => s,1,NoOp()\n",                 # setting before any section
    "[a]\nthis line has no equals\n",
    "[a\nx=1\n",
    "[a]()\nx=1\n",
    "#includ foo.conf\n",
    "[a]\n;-- never closed\nx=1\n",
])
def test_strict_reader_refuses(text):
    with pytest.raises(ConfError):
        parse_conf(text)


def test_strict_reader_reads_asterisk_forms():
    conf = parse_conf("[tpl](!)\nallow=ulaw\n[x](tpl)\nvalue=a\\;b ; comment\n"
                      ";-- block\ncomment --;\n#include other.conf\n")
    assert conf.section("tpl").is_template
    assert conf.section("x").options == ("tpl",)
    assert conf.section("x").get("value") == "a;b"
    assert conf.includes == [("include", "other.conf", 7)]


def test_extensions_conf_includes_the_dialplan_and_generated_file():
    conf = read_conf(CONF_DIR / "extensions.conf")
    assert [(d, f) for d, f, _ in conf.includes] == [
        ("include", "ictcontact.conf"), ("include", "ictcontact-clients.conf")]
    assert conf.section("general").get("writeprotect") == "yes"


def test_pjsip_transport_and_trunk():
    pjsip = read_conf(CONF_DIR / "pjsip.conf")
    by = sections_by_type(pjsip)
    assert by[("transport-udp", "transport")].get("protocol") == "udp"
    endpoint = by[("carrier", "endpoint")]
    assert endpoint.get("context") == "ict-from-carrier"
    assert (endpoint.get("aors"), endpoint.get("outbound_auth")) == ("carrier", "carrier")
    assert ("carrier", "aor") in by and ("carrier", "auth") in by
    assert by[("carrier", "identify")].get("endpoint") == "carrier"
    ext = read_conf(CONF_DIR / "extensions.conf")
    assert ext.section("globals").get("ICTCONTACT_EMERGENCY_TRUNK") == "carrier"


def test_the_trunk_is_dialled_whether_or_not_it_answers_options():
    # Seen on a real Asterisk 22: with qualify_frequency=60 and a carrier that ignores
    # OPTIONS the static contact turned Unavailable, and every Dial(PJSIP/<n>@carrier),
    # emergency calls included, failed with "Could not create dialog to invalid URI
    # 'carrier'": ast_sip_session_create_outgoing() keeps only REACHABLE contacts and
    # then dials the aor name itself.
    aor = sections_by_type(read_conf(CONF_DIR / "pjsip.conf"))[("carrier", "aor")]
    assert aor.get("contact").startswith("sip:")
    assert aor.get("qualify_frequency") == "0"


ROUTING_TRUNKS = ("carrier1", "carrier2")


def _trunk_endpoints_in_docs() -> set[str]:
    """The endpoint (second value) of every row of every INSERT INTO trunks in the docs."""
    found = set()
    for page in sorted((CONF_DIR.parent / "docs").glob("*.md")) + [CONF_DIR.parent / "README.md"]:
        for statement in re.findall(r"INSERT INTO trunks \(name, endpoint[^;]*;", page.read_text()):
            values = statement.split("VALUES", 1)[1]
            found.update(re.findall(r"\(\s*'[^']*',\s*'([^']*)'", values))
    return found


def test_every_trunk_endpoint_in_the_docs_is_in_pjsip_conf():
    endpoints = _trunk_endpoints_in_docs()
    assert set(ROUTING_TRUNKS) <= endpoints, "the docs' trunk example changed: update this test"
    by = sections_by_type(read_conf(CONF_DIR / "pjsip.conf"))
    missing = sorted(e for e in endpoints if (e, "endpoint") not in by)
    assert not missing, f"trunk endpoints in the docs but not in pjsip.conf: {missing}"


@pytest.mark.parametrize("name", ROUTING_TRUNKS)
def test_routing_trunks_are_wired_like_the_carrier(name):
    by = sections_by_type(read_conf(CONF_DIR / "pjsip.conf"))
    endpoint = by[(name, "endpoint")]
    assert endpoint.get("context") == "ict-from-carrier"
    assert (endpoint.get("aors"), endpoint.get("outbound_auth")) == (name, name)
    assert endpoint.get("transport") == "transport-udp"
    assert by[(name, "auth")].get("auth_type") == "userpass"
    assert by[(name, "identify")].get("endpoint") == name
    aor = by[(name, "aor")]
    assert aor.get("contact").startswith("sip:")
    # the qualify note of [carrier] holds for every trunk
    assert aor.get("qualify_frequency") == "0"
    # the legacy trunk stays for the dial template and emergency calls
    assert ("carrier", "endpoint") in by


def test_server_dial_template_names_the_trunk():
    template = ServeConfig().dial_template
    trunk = template.split("@", 1)[1]
    assert ("carrier", "endpoint") in sections_by_type(read_conf(CONF_DIR / "pjsip.conf"))
    assert trunk == "carrier"


def test_realtime_chain_is_wired():
    sorcery = read_conf(CONF_DIR / "sorcery.conf").section("res_pjsip")
    mappings = [(i.key, i.value) for i in sorcery.items]
    # pjsip.conf first (the trunk), then the database, for each object type.
    for kind, table in (("endpoint", "ps_endpoints"), ("auth", "ps_auths"), ("aor", "ps_aors")):
        assert [v for k, v in mappings if k == kind] == [
            f"config,pjsip.conf,criteria=type={kind}", f"realtime,{table}"]
    assert ("contact", "realtime,ps_contacts") in mappings
    assert not any("/cache" in k for k, _ in mappings), "a cache would delay suspension"
    ext = read_conf(CONF_DIR / "extconfig.conf").section("settings")
    odbc = read_conf(CONF_DIR / "res_odbc.conf")
    for table in ("ps_endpoints", "ps_auths", "ps_aors", "ps_contacts"):
        driver, connection = ext.get(table).split(",")
        assert driver == "odbc"
        assert odbc.section(connection).get("enabled") == "yes"
    realtime_endpoint = "ps_endpoints"
    transport = "transport-udp"
    schema = (CONF_DIR.parent / "schema" / "020_pjsip_realtime.sql").read_text()
    assert f"'{transport}'" in schema and realtime_endpoint in schema


def test_cdr_chain_is_wired():
    cdr = read_conf(CONF_DIR / "cdr.conf").section("general")
    assert cdr.get("endbeforehexten") == "yes" and cdr.get("enable") == "yes"
    adaptive = read_conf(CONF_DIR / "cdr_adaptive_odbc.conf").sections
    assert len(adaptive) == 1
    section = adaptive[0]
    assert section.get("table") == "cdr"
    assert read_conf(CONF_DIR / "res_odbc.conf").section(section.get("connection"))
    assert section.get("alias start") == "calldate"


def test_modules_preload_odbc():
    modules = read_conf(CONF_DIR / "modules.conf").section("modules")
    preloads = [i.value for i in modules.items if i.key == "preload"]
    assert preloads == ["res_odbc.so", "res_config_odbc.so"]
    required = {i.value for i in modules.items if i.key == "require"}
    assert {"res_agi.so", "cdr_adaptive_odbc.so", "chan_pjsip.so"} <= required


def test_manager_listens_on_loopback_only():
    # The users and their classes: tests/asterisk/test_manager_conf.py
    manager = read_conf(CONF_DIR / "manager.conf")
    assert manager.section("general").get("bindaddr") == "127.0.0.1"