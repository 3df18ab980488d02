"""The admin SQL of the README and of docs/admin-sql.md works when pasted, in order, into a
fresh database: every ```sql block, statement by statement, in one session (as the `mysql`
client runs a paste: autocommit, session variables kept from block to block).

A statement the docs show being refused on purpose follows a comment line
`-- refused: <text>`: it must be refused, with an error containing that text. A failure
names the document, the block (and its line) and the statement.

Two things are put in place of what only the reader has: the rate deck file of the
`LOAD DATA LOCAL INFILE` example (a small deck of the same shape), and the DBA account of the
Adminer example (a name unique to this test, granted on the test database, dropped after).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

from fastagi.db.sqlscript import split_statements
from tests.support.database import connect_server

ROOT = Path(__file__).resolve().parents[2]
SQL_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.S | re.M)
REFUSED = re.compile(r"^[ \t]*-- refused: (.*)$", re.M)
DECK_PATH = "/path/to/ratedeck-100k.csv"
DECK = ("prefix,description,rate_per_min,connection_fee,initial_increment,subsequent_increment\n"
        "1,United States/Canada - Fixed,0.0080,0.0000,60,60\n"
        "44,United Kingdom - Fixed,0.0120,0.0000,30,6\n"
        "4420,United Kingdom - London,0.0110,0.0000,30,6\n")


@dataclass(frozen=True)
class Statement:
    where: str             # "docs/admin-sql.md block 3 (line 57) statement 2"
    sql: str
    refused: str | None    # the text its refusal must contain, or None: it must run


def blocks(path: Path, after: str | None = None) -> list[tuple[int, str]]:
    """(line number, text) of every ```sql block of `path` (after the heading `after`)."""
    text = path.read_text(encoding="utf-8")
    offset = text.index(after) if after else 0
    found = []
    for match in SQL_BLOCK.finditer(text, offset):
        if after and match.start() > _next_heading(text, offset):
            break
        found.append((text.count("\n", 0, match.start(1)) + 1, match.group(1)))
    return found


def _next_heading(text: str, offset: int) -> int:
    match = re.compile(r"^## ", re.M).search(text, offset + 1)
    return match.start() if match else len(text)


def statements(path: Path, after: str | None = None) -> list[Statement]:
    out = []
    for number, (line, block) in enumerate(blocks(path, after), 1):
        out += block_statements(path, number, line, block)
    return out


def block_statements(path: Path, number: int, line: int, block: str) -> list[Statement]:
    pieces = REFUSED.split(block)   # text, refusal, text, refusal, text ...
    parsed = [(sql, None) for sql in split_statements(pieces[0])]
    for refusal, text in zip(pieces[1::2], pieces[2::2]):
        following = split_statements(text)
        assert following, f"{path.name} block {number}: '-- refused:' before no statement"
        parsed += [(following[0], refusal.strip())] + [(sql, None) for sql in following[1:]]
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [Statement(f"{name} block {number} (line {line}) statement {k}",
                      sql, refused) for k, (sql, refused) in enumerate(parsed, 1)]


class Paste:
    """One `mysql` session on the test database, as a DBA pastes into it."""

    def __init__(self, db_url: str, tmp_path: Path) -> None:
        url = make_url(db_url)
        self.database = url.database
        self.deck = tmp_path / "ratedeck.csv"
        self.deck.write_text(DECK, encoding="utf-8")
        self.account = f"dba_{self.database}"[-32:]
        self.connection = pymysql.connect(
            host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
            database=self.database, charset="utf8mb4", autocommit=True, local_infile=True)

    def substitute(self, sql: str) -> str:
        return (sql.replace(DECK_PATH, str(self.deck))
                   .replace("'ana'@'%'", f"'{self.account}'@'%'")
                   .replace(" ictcontact.*", f" `{self.database}`.*"))

    def run(self, statement: Statement) -> None:
        sql = self.substitute(statement.sql)
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql)
                while True:
                    cursor.fetchall()
                    if not cursor.nextset():
                        break
        except pymysql.MySQLError as exc:
            if statement.refused is None:
                pytest.fail(f"{statement.where} failed: {exc}\n{statement.sql}")
            assert statement.refused in str(exc.args[-1]), (
                f"{statement.where} was refused, but not with {statement.refused!r}: {exc}")
            return
        if statement.refused is not None:
            pytest.fail(f"{statement.where} should be refused ({statement.refused!r}) "
                        f"but ran:\n{statement.sql}")

    def close(self) -> None:
        self.connection.close()
        server = connect_server()
        try:
            with server.cursor() as cursor:
                cursor.execute(f"DROP USER IF EXISTS '{self.account}'@'%'")
        finally:
            server.close()


@pytest.fixture
def paste(db_url, tmp_path):
    session = Paste(db_url, tmp_path)
    yield session
    session.close()


ADMIN_SQL = ROOT / "docs" / "admin-sql.md"
README = ROOT / "README.md"


def test_the_splitter_finds_the_blocks_and_the_refusal_markers():
    admin = statements(ADMIN_SQL)
    readme = statements(README, "## Admin workflows in SQL")
    assert len(admin) > 60 and len(readme) > 10
    assert all(s.where.startswith("README.md block 1 ") for s in readme)
    assert any(s.refused for s in admin)
    assert not any(s.sql.lstrip().startswith("--") for s in admin)   # comments are out


def test_docs_admin_sql_runs_in_order_on_a_fresh_database(paste):
    for statement in statements(ADMIN_SQL):
        paste.run(statement)


def test_the_readme_admin_block_runs_in_order_on_a_fresh_database(paste):
    for statement in statements(README, "## Admin workflows in SQL"):
        paste.run(statement)


@pytest.mark.parametrize("marker, failure", [
    ("-- refused: payments are never changed", "should be refused"),   # no row: not refused
    ("-- refused: some other rule", "was refused, but not with 'some other rule'"),
])
def test_a_marked_statement_must_be_refused_with_its_text(paste, tmp_path, marker, failure):
    doc = tmp_path / "doc.md"
    where = "id = 0" if "never changed" in marker else "id = (SELECT MIN(id) FROM payments)"
    doc.write_text(f"```sql\nINSERT INTO payments (client_id, amount, reference) VALUES (1, 5, 'r');\n"
                   f"{marker}\nUPDATE payments SET note = 'x' WHERE {where};\n```\n",
                   encoding="utf-8")
    first, marked = statements(doc)
    assert marked.refused == marker.split(": ", 1)[1]
    paste.run(first)
    with pytest.raises(pytest.fail.Exception if failure.startswith("should") else AssertionError,
                       match=failure):
        paste.run(marked)


TENANT_LOGINS = ROOT / "docs" / "tenant-logins.md"
AS = re.compile(r"^-- as (\S+)")


class LoginPaste(Paste):
    """The same paste, in the `mariadb` client logged in with a client's own account."""

    def __init__(self, db_url: str, tmp_path: Path, account: str, password: str) -> None:
        url = make_url(db_url)
        self.database = url.database
        self.deck = tmp_path / "ratedeck.csv"
        self.account = f"dba_{self.database}"[-32:]
        self.connection = pymysql.connect(
            host=url.host, port=url.port or 3306, user=account, password=password,
            database=f"{self.database}_tenant", charset="utf8mb4", autocommit=True)


def test_docs_reseller_logins_run_as_the_operator_and_as_the_reseller(paste, db_url, tmp_path):
    """Each block of "Reseller logins" says who runs it (`-- as the operator`, `-- as
    acme.ana`); the doc's account name is replaced by one unique to this test."""
    _, _, pid, counter = make_url(db_url).database.split("_")
    account = f"d{pid}x{counter}.ana"
    logins: dict[str, LoginPaste] = {}
    found = blocks(TENANT_LOGINS, "## Reseller logins")
    assert len(found) >= 3
    try:
        for number, (line, block) in enumerate(found, 1):
            who = AS.match(block)
            assert who, f"docs/tenant-logins.md block {number} does not say who runs it"
            for statement in block_statements(TENANT_LOGINS, number, line, block):
                if who.group(1) == "the":
                    sql = statement.sql.replace(
                        "CALL grant_db_login('acme', 'ana', 'a long passphrase')",
                        f"CALL grant_db_login_as('acme', 'ana', 'a long passphrase', '{account}', NULL)")
                    paste.run(Statement(statement.where, sql, statement.refused))
                else:
                    assert who.group(1) == "acme.ana"
                    if who.group(1) not in logins:
                        logins[who.group(1)] = LoginPaste(db_url, tmp_path, account,
                                                          "a long passphrase")
                    logins[who.group(1)].run(statement)
    finally:
        for login in logins.values():
            login.connection.close()
        with paste.connection.cursor() as cursor:
            cursor.execute("CALL drop_tenant_world()")
