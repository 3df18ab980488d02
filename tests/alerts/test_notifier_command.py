"""`ictcontact notifier` at its edges: one line and an exit code, never a traceback."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.serve_process import run_ictcontact


def test_a_missing_database_is_one_line_and_exit_1(empty_db_url):
    done = run_ictcontact("notifier", "--db", empty_db_url, timeout=30)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("ictcontact notifier: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_setting_that_cannot_work_is_one_line_and_exit_2(db_url):
    done = run_ictcontact("notifier", "--db", db_url, "--alert-timeout", "30", timeout=30)
    assert done.returncode == 2, done.stderr
    assert "alert-lease-seconds (60) must be at least 3 x alert-timeout (30)" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_ictcontact("notifier", "--alert-smtp", "no port:x", timeout=30)
    assert done.returncode == 2 and "--alert-smtp" in done.stderr


def test_serve_refuses_bad_alert_settings_before_it_starts(db_url):
    done = run_ictcontact("serve", "--db", db_url, "--alerts", "yes", "--alert-smtp-security",
                          "ssl", timeout=30)
    assert done.returncode == 2, done.stderr
    assert "alert-smtp-security is one of none, starttls, tls" in done.stderr
    done = run_ictcontact("serve", "--db", db_url, "--alerts", "maybe", timeout=30)
    assert done.returncode == 2 and "--alerts" in done.stderr


def test_an_account_that_cannot_claim_is_refused_at_start(engine, db_url):
    """SELECT only: it would start and fail every poll; it says which privilege instead."""
    database = make_url(db_url).database
    account = f"ntf_{database}"
    with engine.begin() as conn:
        conn.execute(text("CREATE USER :a@'%' IDENTIFIED BY 'select only 123'"), {"a": account})
        conn.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{account}'@'%%'")
    try:
        url = make_url(db_url).set(username=account, password="select only 123")
        done = run_ictcontact("notifier", "--db", url.render_as_string(hide_password=False),
                              timeout=30)
        assert done.returncode == 1, done.stderr
        assert "lacks a privilege the notifier needs: UPDATE command denied" in done.stderr
        assert "alert_deliveries" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP USER IF EXISTS :a@'%'"), {"a": account})
