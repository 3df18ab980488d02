"""Pieces shared by the AMI tests."""

from __future__ import annotations

from pathlib import Path

from fastagi.dialplan.confparse import read_conf

MANAGER_CONF = Path(__file__).resolve().parents[2] / "asterisk-conf" / "manager.conf"


def shipped_write_classes() -> set[str]:
    """The write classes of the ictcontact AMI user in the shipped manager.conf."""
    user = read_conf(MANAGER_CONF).section("ictcontact")
    return {c.strip() for c in user.get("write").split(",")}
