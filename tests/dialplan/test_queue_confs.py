"""The shipped app_queue configuration: realtime families mapped to the views the schema
creates, no static queue that would shadow a realtime one, app_queue required."""

from __future__ import annotations

import re

from fastagi.dialplan.confparse import read_conf
from tests.dialplan.helpers import CONF_DIR

SCHEMA = CONF_DIR.parent / "schema" / "043_queue_realtime.sql"


def test_queue_families_read_the_schemas_views():
    settings = read_conf(CONF_DIR / "extconfig.conf").section("settings")
    odbc = read_conf(CONF_DIR / "res_odbc.conf")
    views = set(re.findall(r"CREATE VIEW (\w+) AS", SCHEMA.read_text()))
    for family, view in (("queues", "ast_queues"), ("queue_members", "ast_queue_members")):
        driver, connection, table = settings.get(family).split(",")
        assert (driver, table) == ("odbc", view)
        assert odbc.section(connection).get("enabled") == "yes"
        assert view in views


def test_queues_conf_defines_no_queue_and_keeps_nothing_in_astdb():
    conf = read_conf(CONF_DIR / "queues.conf")
    assert conf.names() == ["general"]
    general = conf.section("general")
    assert general.get("persistentmembers") == "no"


def test_app_queue_is_required():
    modules = read_conf(CONF_DIR / "modules.conf").section("modules")
    assert "app_queue.so" in {i.value for i in modules.items if i.key == "require"}


def test_realtime_columns_are_app_queue_parameters():
    # Column names app_queue's queue_set_param / rt_handle_member_record read (an unknown
    # queue column is only warned about, so a typo would silently do nothing).
    queue_params = {"name", "strategy", "timeout", "retry", "wrapuptime", "ringinuse",
                    "setinterfacevar", "joinempty", "leavewhenempty", "autofill", "client"}
    member_fields = {"uniqueid", "queue_name", "interface", "membername", "state_interface",
                     "penalty", "paused", "reason_paused", "ringinuse"}
    text = SCHEMA.read_text()
    queues_sql = text.split("CREATE VIEW ast_queues AS", 1)[1].split("FROM", 1)[0]
    members_sql = text.split("CREATE VIEW ast_queue_members AS", 1)[1].split("FROM", 1)[0]
    assert set(re.findall(r"\bAS (\w+)", queues_sql)) == queue_params
    assert set(re.findall(r"\bAS (\w+)", members_sql)) - {"CHAR"} == member_fields
