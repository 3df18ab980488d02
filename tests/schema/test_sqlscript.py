"""The DELIMITER-aware splitter that feeds schema files to the server like `mysql < file`."""

from __future__ import annotations

import re

import pytest

from fastagi.db import migrate
from fastagi.db.sqlscript import split_statements


@pytest.mark.parametrize("script, expected", [
    ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("SELECT 1", ["SELECT 1"]),                                  # last one needs no ';'
    ("  ;;\n;  ", []),                                           # empty statements skipped
    ("SELECT 'a;b'; SELECT 2", ["SELECT 'a;b'", "SELECT 2"]),
    ('SELECT "a;b"', ['SELECT "a;b"']),
    ("SELECT `we;ird` FROM t", ["SELECT `we;ird` FROM t"]),
    ("SELECT 'it''s;'; SELECT 2", ["SELECT 'it''s;'", "SELECT 2"]),   # doubled quote
    (r"SELECT 'it\'s;'; SELECT 2", [r"SELECT 'it\'s;'", "SELECT 2"]),  # backslash escape
    (r"SELECT 'ends in \\'; SELECT 2", [r"SELECT 'ends in \\'", "SELECT 2"]),
    ("SELECT `a``;b`; SELECT 2", ["SELECT `a``;b`", "SELECT 2"]),
    ("SELECT '-- not; a comment'", ["SELECT '-- not; a comment'"]),
    ("SELECT '/* not; */'", ["SELECT '/* not; */'"]),
])
def test_quotes_protect_the_delimiter(script, expected):
    assert split_statements(script) == expected


@pytest.mark.parametrize("script, expected", [
    ("-- a comment; with a semicolon\nSELECT 1;", ["SELECT 1"]),
    ("# hash comment; here\nSELECT 1;", ["SELECT 1"]),
    ("SELECT /* inline; */ 1;", ["SELECT  1"]),
    ("/* multi\n line; */ SELECT 1;", ["SELECT 1"]),
    ("SELECT 1; -- trailing comment without newline", ["SELECT 1"]),
    ("SELECT 1--1;", ["SELECT 1--1"]),          # '--' without a space is minus minus
    ("SELECT 1 -- it's a comment, not a quote\n;", ["SELECT 1"]),
])
def test_comments_are_dropped_and_hide_delimiters_and_quotes(script, expected):
    assert split_statements(script) == expected


def test_delimiter_blocks_keep_inner_semicolons():
    script = (
        "CREATE TABLE t (id INT);\n"
        "DELIMITER //\n"
        "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW\n"
        "BEGIN\n"
        "  SET @a = 1;\n"
        "  SET @b = 'x//y;';\n"
        "END//\n"
        "CREATE PROCEDURE p() BEGIN SELECT 1; END//\n"
        "DELIMITER ;\n"
        "INSERT INTO t VALUES (1);\n"
    )
    assert split_statements(script) == [
        "CREATE TABLE t (id INT)",
        "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW\nBEGIN\n"
        "  SET @a = 1;\n  SET @b = 'x//y;';\nEND",
        "CREATE PROCEDURE p() BEGIN SELECT 1; END",
        "INSERT INTO t VALUES (1)",
    ]


def test_delimiter_directive_is_case_insensitive_and_any_string():
    script = "delimiter $$\nSELECT 1; SELECT 2$$\n  DELIMITER ;\nSELECT 3;"
    assert split_statements(script) == ["SELECT 1; SELECT 2", "SELECT 3"]


def test_crlf_line_endings():
    script = "DELIMITER //\r\nSELECT 1; SELECT 2//\r\nDELIMITER ;\r\nSELECT 3;\r\n"
    assert split_statements(script) == ["SELECT 1; SELECT 2", "SELECT 3"]


def test_delimiter_word_inside_a_statement_is_not_a_directive():
    script = "SELECT 1 AS x,\nDELIMITER AS y;"
    assert split_statements(script) == ["SELECT 1 AS x,\nDELIMITER AS y"]


@pytest.mark.parametrize("script", ["SELECT 'open", 'SELECT "open', "SELECT `open",
                                    r"SELECT 'escaped end\'"])
def test_unterminated_quote_is_an_error(script):
    with pytest.raises(ValueError, match="unterminated"):
        split_statements(script)


@pytest.mark.parametrize("migration", migrate.available_migrations(), ids=lambda m: m.name)
def test_every_shipped_schema_file_splits_into_its_create_statements(migration):
    source = migration.path.read_text(encoding="utf-8")
    statements = split_statements(source)
    code = re.sub(r"--[^\n]*", "", source)
    for kind in ("TABLE", "TRIGGER", "PROCEDURE", "VIEW"):
        made = [s for s in statements if re.match(rf"CREATE {kind}\b", s)]
        assert len(made) == len(re.findall(rf"^CREATE {kind}\b", code, re.M)), kind
    assert not any(s.upper().startswith("DELIMITER") for s in statements)
    assert all(not s.endswith((";", "//")) for s in statements)
