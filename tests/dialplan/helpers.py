"""Paths and small builders shared by the dialplan tests."""

from __future__ import annotations

from pathlib import Path

from fastagi.store.dialplan import Client, Did, Extension

ROOT = Path(__file__).resolve().parents[2]
DIALPLAN = ROOT / "dialplan" / "ictcontact.conf"
CONF_DIR = ROOT / "asterisk-conf"
EXTENSIONS_CONF = CONF_DIR / "extensions.conf"
EMERGENCY = ("911", "112", "999")


def client(code: str, extens=(), dids=(), status="active", name=None) -> Client:
    """A Client with extensions `extens` and DIDs given as (did, exten) pairs."""
    return Client(code=code, name=name or code.title(), status=status,
                  extensions=tuple(Extension(e, f"{code}-{e}") for e in extens),
                  dids=tuple(Did(d, e, f"{code}-{e}") for d, e in dids))


SAMPLE_CLIENTS = [
    client("acme", ["1001", "1002"], [("442071234567", "1001")]),
    client("beta", ["1001", "2001"], [("33140000000", "2001")]),
    client("gamma-2", ["1001"], status="suspended"),
    client("empty"),
]
