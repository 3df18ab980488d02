"""Read the ODBC connection Asterisk uses: the DSN in odbc.ini and the res_odbc.conf entry.

Asterisk connects as res_odbc.conf's `username`/`password` through the unixODBC DSN that
names the server, port and database. MariaDB checks the account against the host the
connection comes FROM: over TCP to 127.0.0.1 that is '127.0.0.1', not 'localhost' (which
MariaDB reserves for the Unix socket). `account_host` says which one a DSN ends up as.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

from fastagi.dialplan.confparse import read_conf

DEFAULT_ODBC_INI = "/etc/odbc.ini"
DEFAULT_RES_ODBC = "/etc/asterisk/res_odbc.conf"
DEFAULT_CONNECTION = "asterisk"
LOOPBACK = {"127.0.0.1", "::1"}
# The shipped res_odbc.conf's password: a marker to replace, never a password to set.
PLACEHOLDER_PASSWORD = "CHANGE_ME"


class OdbcConfigError(ValueError):
    """The files do not describe a usable connection; the message says which line."""


@dataclass(frozen=True)
class AsteriskConnection:
    """Everything Asterisk's database login is made of."""

    dsn: str
    server: str
    port: int
    database: str
    socket: str | None
    username: str
    password: str

    @property
    def over_socket(self) -> bool:
        # MariaDB Connector/ODBC (like Connector/C) takes "localhost" as the Unix socket.
        return bool(self.socket) or self.server == "localhost"

    @property
    def account_host(self) -> str | None:
        """The host part of the account MariaDB will match, when it is known from here.

        None for a remote server: the account must name the Asterisk box's address as the
        database server sees it, which only the operator knows.
        """
        if self.over_socket:
            return "localhost"
        if self.server in LOOPBACK:
            return self.server
        return None

    @property
    def has_placeholder_password(self) -> bool:
        return self.password.strip().upper().startswith(PLACEHOLDER_PASSWORD)

    @property
    def account(self) -> str:
        return f"'{self.username}'@'{self.account_host or '<asterisk host>'}'"


def read_dsn(odbc_ini: str | Path, dsn: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    parser.optionxform = str.lower  # unixODBC keys are case-insensitive
    try:
        read = parser.read(odbc_ini, encoding="utf-8")
    except configparser.Error as exc:
        raise OdbcConfigError(f"{odbc_ini}: {exc}") from exc
    if not read:
        raise OdbcConfigError(f"{odbc_ini}: cannot read the file")
    if not parser.has_section(dsn):
        raise OdbcConfigError(f"{odbc_ini}: no DSN [{dsn}] (res_odbc.conf names it)")
    return dict(parser.items(dsn))


def read_connection(res_odbc: str | Path = DEFAULT_RES_ODBC,
                    odbc_ini: str | Path = DEFAULT_ODBC_INI,
                    connection: str = DEFAULT_CONNECTION) -> AsteriskConnection:
    """The login of res_odbc.conf's [connection] through its DSN in odbc.ini."""
    conf = read_conf(res_odbc)
    try:
        section = conf.section(connection)
    except KeyError as exc:
        raise OdbcConfigError(f"{res_odbc}: no [{connection}] connection") from exc
    values = {key: section.get(key) for key in ("dsn", "username", "password")}
    missing = [key for key, value in values.items() if not value]
    if missing:
        raise OdbcConfigError(f"{res_odbc}: [{connection}] has no {', '.join(missing)}")
    dsn = read_dsn(odbc_ini, values["dsn"])
    database = dsn.get("database")
    if not database:
        raise OdbcConfigError(f"{odbc_ini}: [{values['dsn']}] has no Database")
    try:
        port = int(dsn.get("port") or 3306)
    except ValueError as exc:
        raise OdbcConfigError(f"{odbc_ini}: [{values['dsn']}] Port is not a number") from exc
    return AsteriskConnection(dsn=values["dsn"], server=dsn.get("server") or "localhost",
                              port=port, database=database, socket=dsn.get("socket"),
                              username=values["username"], password=values["password"])
