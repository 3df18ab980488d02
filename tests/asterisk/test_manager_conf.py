"""The shipped manager.conf gives each AMI user exactly the classes its actions need.

Seen on a real Asterisk 22: `ictcontact dialplan sync --reload ami` with the old single
user (write=originate,call,reporting) got `Permission denied`: Reload needs config or
system. ACTION_CLASSES is read from main/manager.c (ast_manager_register_xml_core: an
action is allowed when the user's write classes share ANY of its classes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastagi.dialplan.confparse import read_conf

MANAGER_CONF = Path(__file__).resolve().parents[2] / "asterisk-conf" / "manager.conf"

# action -> the classes it is registered with in Asterisk 22's main/manager.c
ACTION_CLASSES = {
    "Login": set(), "Logoff": set(), "Ping": set(), "Events": set(),
    "Originate": {"originate"},
    "Hangup": {"system", "call"},
    "Setvar": {"call"},
    "Getvar": {"call", "reporting"},
    "CoreShowChannels": {"system", "reporting"},
    "Status": {"system", "call", "reporting"},
    "Reload": {"config", "system"},
    "Command": {"command"},
    "GetConfig": {"system", "config"},
    "UpdateConfig": {"config"},
    "ModuleLoad": {"system"},
}
# AMI user -> the actions the product sends as that user
USERS = {
    "ictcontact": ("Login", "Logoff", "Ping", "Originate", "Hangup", "Setvar",
                   "CoreShowChannels"),
    "ictcontact-sync": ("Login", "Logoff", "Reload"),
}


def classes(value: str | None) -> set[str]:
    return {c.strip() for c in (value or "").split(",") if c.strip() and c.strip() != "none"}


def allowed(user_write: set[str], action: str) -> bool:
    needed = ACTION_CLASSES[action]
    return not needed or bool(user_write & needed)


@pytest.fixture(scope="module")
def users():
    conf = read_conf(MANAGER_CONF)
    return {s.name: s for s in conf.sections if s.name != "general"}


def test_every_product_user_is_there_and_nothing_else(users):
    assert set(users) == set(USERS)


@pytest.mark.parametrize("user", sorted(USERS))
def test_each_user_may_send_every_action_it_uses(users, user):
    write = classes(users[user].get("write"))
    assert [a for a in USERS[user] if not allowed(write, a)] == []


@pytest.mark.parametrize("user", sorted(USERS))
def test_each_user_has_no_class_its_actions_do_not_need(users, user):
    write = classes(users[user].get("write"))
    for cls in write:
        # taking the class away must break one of the user's actions
        assert any(not allowed(write - {cls}, a) for a in USERS[user]), cls


def test_no_user_can_reach_a_shell_or_rewrite_files(users):
    for section in users.values():
        write = classes(section.get("write"))
        assert not {"command", "config"} & write, section.name
        # Originate of System()/Exec() needs system: never together with originate.
        assert not {"system", "originate"} <= write, section.name


def test_the_sync_user_reads_nothing(users):
    assert classes(users["ictcontact-sync"].get("read")) == set()


def test_every_user_is_loopback_only_with_its_own_secret(users):
    secrets = [s.get("secret") for s in users.values()]
    assert len(set(secrets)) == len(secrets)
    for section in users.values():
        assert section.get("deny") == "0.0.0.0/0.0.0.0"
        assert section.get("permit") == "127.0.0.1/255.255.255.255"


def test_the_old_single_user_would_be_refused_reload():
    assert not allowed({"originate", "call", "reporting"}, "Reload")


def test_the_sync_command_logs_in_as_the_sync_user():
    from fastagi.commands.dialplan import SYNC_AMI_USER
    from fastagi.dialplan.reload import AmiTarget
    assert SYNC_AMI_USER == AmiTarget().username == "ictcontact-sync"
