"""Two tenants with colliding names, their database logins, and ways to look at them.

Every client, account and role name derives from the test database's name so parallel
test runs on one server never collide (see conftest.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pymysql
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from tests.builders import make_agent, make_campaign, make_client
from tests.support.waiting import wait_until_blocking

ROLES = ("admin", "supervisor", "agent")
PASSWORD = "correct horse battery staple"
BASE_TABLES = ("clients", "campaigns", "campaign_runs", "contacts", "agents", "extensions",
               "users", "payments", "db_logins", "dids", "calls", "rate_plans", "rates")


def prefix_for(database: str) -> str:
    """A client-code prefix unique to the test database, e.g. ict_test_123_4 -> t123x4z."""
    _, _, pid, counter = database.split("_")
    return f"t{pid}x{counter}z"


def drop_accounts_with_prefix(engine: Engine, prefix: str) -> None:
    """Drop accounts whose name starts with `prefix` (only this test's)."""
    like = prefix.replace("_", "\\_") + "%"
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT user, host FROM mysql.user WHERE user LIKE :p"),
                            {"p": like}).all()
        for user, host in rows:
            conn.execute(text("DROP USER IF EXISTS :u@:h"), {"u": user, "h": host})


def connect(url: str, account: str, password: str, database: str | None,
            **options) -> pymysql.Connection:
    """A real client connection as `account` (autocommit, like the mariadb client)."""
    u = make_url(url)
    # PyMySQL would send a str password as latin-1; the server hashed its UTF-8 bytes.
    return pymysql.connect(host=u.host, port=u.port or 3306, user=account,
                           password=password.encode("utf-8"), charset="utf8mb4",
                           database=database, autocommit=True, connect_timeout=5, **options)


def error_code(exc: BaseException) -> int:
    return exc.args[0]


@dataclass
class Client:
    letter: str
    id: int
    code: str
    campaign_id: int
    agent_id: int
    extension_id: int
    contact_id: int
    users: dict[str, int] = field(default_factory=dict)      # role -> users.id
    accounts: dict[str, str] = field(default_factory=dict)   # role -> account name


@dataclass
class Tenants:
    engine: Engine
    url: str
    database: str
    tenant_database: str
    prefix: str
    clients: dict[str, Client]

    @classmethod
    def create(cls, engine: Engine, url: str, prefix: str) -> "Tenants":
        database = make_url(url).database
        clients = {}
        with engine.begin() as conn:
            for letter in ("a", "b"):
                client = make_client(conn, prefix + letter, balance=25)
                agent = make_agent(conn, client.id, "Agent 7")
                campaign = make_campaign(conn, client.id, "Spring")
                extension = conn.execute(text(
                    "INSERT INTO extensions (client_id, agent_id, exten, sip_password) "
                    "VALUES (:c, :a, '1001', 'sip-secret')"), {"c": client.id, "a": agent}).lastrowid
                contact = conn.execute(text(
                    "INSERT INTO contacts (client_id, campaign_id, phone, first_name) "
                    "VALUES (:c, :k, '442071234567', 'Sam')"),
                    {"c": client.id, "k": campaign}).lastrowid
                conn.execute(text("INSERT INTO dids (client_id, did, exten) VALUES (:c, :d, '1001')"),
                             {"c": client.id, "d": f"4420{client.id:07d}"})
                entry = Client(letter, client.id, client.code, campaign, agent, extension, contact)
                for role in ROLES:
                    entry.users[role] = conn.execute(text(
                        "INSERT INTO users (client_id, agent_id, username, role) "
                        "VALUES (:c, :a, :u, :r)"),
                        {"c": client.id, "a": agent if role == "agent" else None,
                         "u": f"{role}-{client.code}", "r": role}).lastrowid
                clients[letter] = entry
        with engine.begin() as conn:
            for entry in clients.values():
                for role in ROLES:
                    row = conn.execute(text("CALL grant_db_login(:c, :u, :p)"),
                                       {"c": entry.code, "u": f"{role}-{entry.code}",
                                        "p": PASSWORD}).one()
                    entry.accounts[role] = row.account
        return cls(engine, url, database, f"{database}_tenant", prefix, clients)

    def login(self, letter: str, role: str = "admin", **options) -> pymysql.Connection:
        return connect(self.url, self.clients[letter].accounts[role], PASSWORD,
                       self.tenant_database, **options)

    def snapshot(self) -> dict[str, object]:
        """Every row of the product's tables, and every grant of the logins."""
        snap: dict[str, object] = {}
        with self.engine.connect() as conn:
            for table in BASE_TABLES:
                snap[table] = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
            for entry in self.clients.values():
                for account in entry.accounts.values():
                    snap[f"grants:{account}"] = sorted(
                        r[0] for r in conn.execute(text("SHOW GRANTS FOR :u@'%'"), {"u": account}))
        return snap


# What the watchdog and the sync write about hostile sessions: expected to change.
WATCHDOG_TABLES = ("tenant_sessions_ended", "db_login_sync_problems", "watchdog_blockers_seen")


def checksums(tenants: "Tenants") -> dict[str, object]:
    """CHECKSUM TABLE of every base table of the product database (but the watchdog's
    logs), each AUTO_INCREMENT, and every login's grants and account record (lock,
    limits): a before/after comparison shows any change a hostile statement made."""
    snap: dict[str, object] = {}
    with tenants.engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT table_name, auto_increment FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")).all()
        for name, auto_increment in tables:
            if name in WATCHDOG_TABLES:
                continue
            snap[name] = (conn.execute(text(f"CHECKSUM TABLE `{name}`")).one()[1], auto_increment)
        for entry in tenants.clients.values():
            for account in entry.accounts.values():
                snap[f"grants:{account}"] = sorted(
                    r[0] for r in conn.execute(text("SHOW GRANTS FOR :u@'%'"), {"u": account}))
                snap[f"account:{account}"] = conn.execute(text(
                    "SELECT priv FROM mysql.global_priv WHERE User = :u AND Host = '%'"),
                    {"u": account}).scalar()
    return snap


def assert_unchanged(before: dict[str, object], after: dict[str, object], spent_ids: int = 20) -> None:
    """Every table's rows, every grant and account as before. An AUTO_INCREMENT may have
    moved by a few ids (InnoDB spends one on an insert refused after it reached the
    table, e.g. the insert half of a refused REPLACE) but never jumped."""
    assert before.keys() == after.keys()
    changed = []
    for key, old in before.items():
        new = after[key]
        if key.startswith(("grants:", "account:")):
            if old != new:
                changed.append(key)
            continue
        (old_sum, old_next), (new_sum, new_next) = old, new
        if old_sum != new_sum or not (old_next or 0) <= (new_next or 0) <= (old_next or 0) + spent_ids:
            changed.append(f"{key}: {old} -> {new}")
    assert changed == [], changed


def query(conn: pymysql.Connection, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def execute(conn: pymysql.Connection, sql: str, args=None) -> int:
    """Run one statement; return the affected row count."""
    with conn.cursor() as cur:
        return cur.execute(sql, args)


# Lock-outs: the db_login_sync event runs every second; LOCK_BOUND_S is the bound tests allow.
LOCK_BOUND_S = 5.0
ACCOUNT_LOCKED = 4151


SERVER_LOST = 2013


def can_connect(world, letter: str, role: str) -> bool:
    """Whether the login is let in now: True, or False when refused as locked. A login
    whose connection is ended in its handshake (the sync locking the account KILLs its
    sessions, a new one too, before it is told OK) says neither: it is tried again."""
    for _ in range(3):
        try:
            world.login(letter, role).close()
        except pymysql.MySQLError as exc:
            if error_code(exc) == SERVER_LOST:
                time.sleep(0.2)
                continue
            assert error_code(exc) == ACCOUNT_LOCKED, exc
            return False
        return True
    raise AssertionError(f"the {letter} {role} login lost its connection 3 times in a row")


def seconds_until(predicate) -> None:
    """Until `predicate` holds; fails past LOCK_BOUND_S (the bound is the behaviour)."""
    wait_until_blocking(predicate, LOCK_BOUND_S)


def is_disconnected(conn) -> bool:
    try:
        query(conn, "SELECT 1")
    except pymysql.err.OperationalError:
        return True
    except pymysql.err.InterfaceError:
        return True
    return False
