"""Does the server's database account hold every privilege `serve` needs?

An account with SELECT only would start, answer `health` with OK and make every authorize
`unavailable`. Each probe below is a statement the server's own work needs, on no rows
(`WHERE FALSE`; INSERT IGNORE, so columns left out are no error), in a transaction
rolled back: MariaDB checks the privilege when it opens
the table, so a missing one is refused with its own one-line message ("UPDATE command
denied to user ... for table `db`.`calls`") and nothing is changed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

# what authorize, settle, agent login/logout and the periodic jobs write (fastagi/store)
_PROBES = (
    "SELECT id FROM clients WHERE FALSE",
    "SELECT id FROM rates WHERE FALSE",
    "INSERT IGNORE INTO calls (id) SELECT id FROM calls WHERE FALSE",
    "UPDATE calls SET id = id WHERE FALSE",
    "UPDATE clients SET id = id WHERE FALSE",
    "UPDATE client_accounts SET client_id = client_id WHERE FALSE",
    "INSERT IGNORE INTO agent_sessions (id) SELECT id FROM agent_sessions WHERE FALSE",
    "UPDATE agent_sessions SET id = id WHERE FALSE",
    "UPDATE agents SET id = id WHERE FALSE",
    "INSERT IGNORE INTO agent_login_log (id) SELECT id FROM agent_login_log WHERE FALSE",
    "DELETE FROM client_changes WHERE FALSE",
)
# table, column, routine access denied; access denied to the database
_DENIED = {1142, 1143, 1370, 1044}


def missing_privilege(engine: Engine, login_sync: bool = False) -> str | None:
    """The server's one-line refusal of the first privilege the account lacks, or None.
    With `login_sync` (serve's login sync job on) EXECUTE on sync_db_logins is needed too."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            refusal = first_refused_probe(conn, _PROBES)
            if refusal is not None:
                return refusal
            if login_sync and not _may_execute(conn, "sync_db_logins"):
                return (f"EXECUTE on the procedure sync_db_logins (the login sync job): "
                        f"GRANT EXECUTE ON PROCEDURE {_database(conn)}.sync_db_logins TO "
                        f"the account, or start with --login-sync-seconds 0")
            return None
        finally:
            transaction.rollback()



def first_refused_probe(conn: Connection, probes) -> str | None:
    """Run each probe (a statement that changes nothing) in the caller's transaction; the
    server's one-line refusal of the first one denied for lack of a privilege, or None."""
    for probe in probes:
        try:
            conn.execute(text(probe))
        except DBAPIError as exc:
            orig = exc.orig
            if orig is not None and orig.args and orig.args[0] in _DENIED:
                return str(orig.args[1])
            raise
    return None

def _may_execute(conn: Connection, routine: str) -> bool:
    # information_schema.ROUTINES lists only the routines the account holds a privilege on;
    # calling it to find out would run the sync
    return conn.execute(text(
        "SELECT COUNT(*) FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = :name"),
        {"name": routine}).scalar_one() > 0


def _database(conn: Connection) -> str:
    return conn.execute(text("SELECT DATABASE()")).scalar_one()
