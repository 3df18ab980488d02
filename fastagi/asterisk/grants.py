"""The privileges Asterisk's database account needs, in one table.

`ictcontact asterisk grants` writes them and `ictcontact asterisk check` verifies them from
this same table, so the documented grants, the shipped configuration and the check can
never disagree. Asterisk reads the realtime views and writes only registrations and CDRs.
"""

from __future__ import annotations

# object -> privileges (what res_config_odbc / cdr_adaptive_odbc do with it)
ASTERISK_NEEDS: dict[str, tuple[str, ...]] = {
    "ps_endpoints": ("SELECT",),                              # PJSIP realtime, read per request
    "ps_auths": ("SELECT",),
    "ps_aors": ("SELECT",),
    "ps_contacts": ("SELECT", "INSERT", "UPDATE", "DELETE"),  # registrations
    "cdr": ("SELECT", "INSERT"),                              # cdr_adaptive_odbc (reads columns)
    "ast_queues": ("SELECT",),                                # app_queue realtime queues
    "ast_queue_members": ("SELECT",),                         # and their members
}


def grant_statements(database: str, username: str, host: str,
                     password: str) -> list[tuple[str, tuple]]:
    """(SQL, parameters) creating the account if missing and granting exactly what it needs.

    Account names and the password go as bound string literals; identifiers (the database
    and object names) are backquoted with any backquote doubled.
    """
    account = "%s@%s"
    statements: list[tuple[str, tuple]] = [
        # ALTER too: an account that already exists gets the password res_odbc.conf has.
        (f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s", (username, host, password)),
        (f"ALTER USER {account} IDENTIFIED BY %s", (username, host, password)),
    ]
    for name, privileges in ASTERISK_NEEDS.items():
        statements.append((f"GRANT {', '.join(privileges)} ON {quote_identifier(database)}."
                           f"{quote_identifier(name)} TO {account}", (username, host)))
    return statements


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def shown(sql: str, params: tuple, password: str) -> str:
    """The statement as a reader sees it, with the password masked."""
    def literal(value: str) -> str:
        return "'********'" if value == password else "'" + value.replace("'", "''") + "'"
    return sql % tuple(literal(p) for p in params) + ";"
