"""Stock Adminer and phpMyAdmin in headless Chromium, driven the way an admin uses them.

Debian's packages are served as installed (`/usr/share/adminer`, `/usr/share/phpmyadmin`)
by `php -S` on a free local port; nothing of them is changed. phpMyAdmin reads its
configuration from the path its `libraries/vendor_config.php` names (`/etc/phpmyadmin`):
so that a test never touches the machine's configuration, it is served from a directory
of symlinks to the installed files in which only `vendor_config.php` is the test's own
(pointing at a config for 127.0.0.1 and a temporary directory), and a router script runs
each PHP entry point with that directory as phpMyAdmin's ROOT_PATH.

Both tools offer the same small API (`AdminTool`): log in, open a row's edit form (found
through the tool's own table view and its Edit link, as a person would), open the New
item / Insert form, fill fields, save, call a procedure from its Call/Execute form, and
read the message the page shows.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ADMINER_DIR = Path("/usr/share/adminer")
PHPMYADMIN_DIR = Path("/usr/share/phpmyadmin")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = ("the browser test of the admin tools needs Debian's chromium, chromium-driver, "
                "adminer, phpmyadmin, php-cli and php-mysql, and selenium in the venv: run "
                "scripts/test (it calls ensure_browser_test_tools from scripts/setup-local.sh) "
                "or `apt-get install chromium chromium-driver adminer phpmyadmin php-cli "
                "php-cgi php-mysql dbconfig-no-thanks` and `pip install -e .[test]`")
WAIT_S = 30.0


def missing_tools() -> list[str]:
    """What the browser test needs and this machine lacks (empty: everything is there)."""
    missing = [str(p) for p in (ADMINER_DIR / "adminer.php", PHPMYADMIN_DIR / "index.php",
                                Path(CHROMIUM), Path(CHROMEDRIVER)) if not p.exists()]
    if shutil.which("php") is None:
        missing.append("php")
    else:
        modules = subprocess.run(["php", "-m"], capture_output=True, text=True).stdout.split()
        if "mysqli" not in modules:
            missing.append("php mysqli (php-mysql)")
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (Python)")
    return missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PhpServer:
    """`php -S 127.0.0.1:<free port>` on `docroot` (with `router`), until `stop()`."""

    def __init__(self, workdir: Path, docroot: Path, router: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        sessions = workdir / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        command = ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(docroot),
                   "-d", f"session.save_path={sessions}", "-d", "display_errors=stderr"]
        if router is not None:
            command.append(str(router))
        self.log = open(workdir / "php-server.log", "wb")
        # Several workers: a page's scripts and styles load in parallel, and a page that
        # waits on a database lock does not stop the test's other requests.
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}
        # Its own process group: the workers are its children, and stop() ends them all.
        self.process = subprocess.Popen(command, cwd=docroot, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_it_answers()

    def _wait_until_it_answers(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"php -S exited with {self.process.returncode}: "
                                   f"see {self.log.name}")
            try:
                urllib.request.urlopen(self.url, timeout=5).close()
                return
            except urllib.error.HTTPError:   # any answer: it serves
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"php -S did not answer on {self.url} within {WAIT_S} s")
                time.sleep(0.05)

    def stop(self) -> None:
        """End the server and its workers (its process group, which only it started)."""
        group = self.process.pid
        try:
            os.killpg(group, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        try:                                 # workers still exiting
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def serve_adminer(workdir: Path) -> PhpServer:
    return PhpServer(workdir, ADMINER_DIR)


PMA_CONFIG = """<?php
// The test's phpMyAdmin configuration (tests/support/admin_tools.py).
$cfg['blowfish_secret'] = '{secret}';
$cfg['Servers'][1]['auth_type'] = 'cookie';
$cfg['Servers'][1]['host'] = '{host}';
$cfg['Servers'][1]['port'] = '{port}';
$cfg['Servers'][1]['connect_type'] = 'tcp';
$cfg['VersionCheck'] = false;
$cfg['SendErrorReports'] = 'never';
$cfg['LoginCookieValidity'] = 3600;
"""

PMA_ROUTER = """<?php
// Runs phpMyAdmin's PHP entry points with the symlinked copy as ROOT_PATH, so that its
// libraries/vendor_config.php (the test's own) names the test's config; other files are
// served as they are.
$root = {root};
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/' || $path === '') {{
    $path = '/index.php';
}}
$file = $root . ltrim($path, '/');
if (substr($path, -4) === '.php' && is_file($file)) {{
    define('ROOT_PATH', $root);
    chdir($root);
    require $file;
    return true;
}}
return false;
"""


def serve_phpmyadmin(workdir: Path, db_host: str, db_port: int) -> PhpServer:
    root = workdir / "phpmyadmin"
    (root / "libraries").mkdir(parents=True)
    for entry in PHPMYADMIN_DIR.iterdir():
        if entry.name != "libraries":
            (root / entry.name).symlink_to(entry)
    for entry in (PHPMYADMIN_DIR / "libraries").iterdir():
        if entry.name != "vendor_config.php":
            (root / "libraries" / entry.name).symlink_to(entry)
    temp = workdir / "phpmyadmin-tmp"
    temp.mkdir()
    config = workdir / "config.inc.php"
    config.write_text(PMA_CONFIG.format(secret=os.urandom(16).hex(), host=db_host,
                                        port=db_port))
    vendor = (PHPMYADMIN_DIR / "libraries" / "vendor_config.php").read_text()
    for setting, value in (("configFile", str(config)), ("tempDir", f"{temp}/")):
        start = vendor.index(f"'{setting}' =>")
        end = vendor.index(",\n", start)
        vendor = vendor[:start] + f"'{setting}' => {php_string(value)}" + vendor[end:]
    (root / "libraries" / "vendor_config.php").write_text(vendor)
    router = workdir / "router.php"
    router.write_text(PMA_ROUTER.format(root=php_string(f"{root}/")))
    return PhpServer(workdir, root, router)


def php_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def start_chromium():
    """Headless Chromium through Debian's chromedriver (a tall window: no control is
    hidden behind phpMyAdmin's console bar)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,2000",
                     "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _timed(step: str, method):
    def timed(self, *args, **kwargs):
        started = time.monotonic()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.timings.append((step, round(time.monotonic() - started, 2)))
    timed.__doc__ = method.__doc__
    return timed


@dataclass(frozen=True)
class Outcome:
    """What the page said after a save or a call: `ok` (a success message or a result),
    and the text a person reads there."""
    ok: bool
    text: str


class AdminTool:
    """What a test does in either tool (see Adminer and PhpMyAdmin). `timings` records
    how long each step took (step, seconds), for a slow run's report."""

    name = "tool"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for step in ("login", "edit", "new", "fill", "save", "call"):
            if step in cls.__dict__:
                setattr(cls, step, _timed(step, cls.__dict__[step]))

    def __init__(self, driver, url: str, db_host: str = "127.0.0.1", db_port: int = 3306):
        self.driver = driver
        self.url = url
        self.db_host, self.db_port = db_host, db_port   # the server the tool logs in to
        self.database = ""
        self.timings: list[tuple[str, float]] = []

    # -- helpers shared by both ------------------------------------------------------------
    def wait(self, condition, what: str, timeout: float = WAIT_S):
        from selenium.common.exceptions import WebDriverException
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = condition()
                if got:
                    return got
            except WebDriverException:
                pass  # the page is being replaced
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what} did not happen within {timeout} s "
                                     f"(page {self.driver.current_url!r}: "
                                     f"{self.page_text()[:600]!r})")
            time.sleep(0.05)

    def page_text(self) -> str:
        try:
            return self.driver.execute_script("return document.body ? document.body.innerText : ''")
        except Exception:
            return ""

    def text_of(self, selector: str) -> str:
        return " ".join(e.text for e in self.css(selector))

    def css(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def js_click(self, element) -> None:
        self.driver.execute_script("arguments[0].click()", element)

    def type_into(self, element, value: str) -> None:
        """Replace an input's text the way typing does (the tool's change handlers run)."""
        from selenium.webdriver.support.ui import Select
        if element.tag_name == "select":
            select = Select(element)
            try:
                select.select_by_value(value)
            except Exception:
                select.select_by_visible_text(value)
            return
        element.clear()
        if value:
            element.send_keys(value)

    def fresh_session(self) -> None:
        """No cookie or session of an earlier test (both tools share the host 127.0.0.1)."""
        self.driver.get(self.url + "robots.txt")
        self.driver.delete_all_cookies()

    # -- the API ---------------------------------------------------------------------------
    def login(self, user: str, password: str, database: str) -> None:
        raise NotImplementedError

    def edit(self, table: str, key: dict[str, object]) -> None:
        raise NotImplementedError

    def new(self, table: str) -> None:
        raise NotImplementedError

    def fill(self, **values: str | None) -> None:
        raise NotImplementedError

    def save(self) -> Outcome:
        raise NotImplementedError

    def call(self, procedure: str, **arguments: str | None) -> Outcome:
        raise NotImplementedError


class Adminer(AdminTool):
    """Adminer 4.8.1: its edit form posts every field back (`UPDATE ... SET <every
    column> WHERE <the row's unique key, or every column of a keyless view> LIMIT 1`)."""

    name = "Adminer"

    def page(self, **query) -> str:
        params = {"server": self.server, "username": self.user, "db": self.database, **query}
        return self.url + "adminer.php?" + urllib.parse.urlencode(params)

    def login(self, user: str, password: str, database: str) -> None:
        self.fresh_session()
        server = self.db_host if self.db_port == 3306 else f"{self.db_host}:{self.db_port}"
        self.user, self.server, self.database = user, server, database
        self.driver.get(self.url + "adminer.php")
        self.type_into(self.css("input[name='auth[server]']")[0], server)
        self.type_into(self.css("input[name='auth[username]']")[0], user)
        self.type_into(self.css("input[name='auth[password]']")[0], password)
        self.type_into(self.css("input[name='auth[db]']")[0], database)
        self.js_click(self.css("input[type=submit][value=Login]")[0])
        self.wait(lambda: self.css("input[name=logout]") or self.css(".error"), "the login")
        # Logged in, the database page may still show an error of its own (without EVENT,
        # MariaDB refuses its Events list: "Access denied ... to database"); kept for the test.
        self.login_notes = [e.text for e in self.css(".error")]
        assert self.css("input[name=logout]"), (
            f"Adminer login as {user} refused: {self.login_notes} ({self.driver.current_url})")

    def edit(self, table: str, key: dict[str, object]) -> None:
        """The table's select page filtered to the row, then its `edit` link."""
        query: dict[str, object] = {"select": table}
        for n, (column, value) in enumerate(key.items()):
            query[f"where[{n}][col]"] = column
            query[f"where[{n}][op]"] = "="
            query[f"where[{n}][val]"] = value
        self.driver.get(self.page(**query))
        links = self.wait(lambda: self.css("table#table tbody a[href*='edit=']")
                          or self.css(".error") or self.css("p.message"), f"the {table} list")
        assert len(links) == 1 and "edit=" in (links[0].get_attribute("href") or ""), (
            f"Adminer: {table} {key} lists {self.page_text()[:400]!r}")
        self.js_click(links[0])
        self.wait(lambda: self.css("form input[type=submit][value=Save]"), f"the {table} edit form")

    def new(self, table: str) -> None:
        self.driver.get(self.page(edit=table))
        self.wait(lambda: self.css("form input[type=submit][value=Save]"), f"the New item form of {table}")

    def fill(self, **values: str | None) -> None:
        for column, value in values.items():
            fields = self.css(f"[name='fields[{column}]']")
            assert fields, f"Adminer's form has no field {column}"
            functions = self.css(f"select[name='function[{column}]']")
            if fields[0].get_attribute("type") == "radio":   # an ENUM
                labels = [f for f in fields if f.find_element("xpath", "..").text.strip() == value]
                assert labels, f"Adminer: {column} offers no {value!r}"
                self.js_click(labels[0])
                continue
            if value is None:
                self.type_into(functions[0], "NULL")
                continue
            if functions:
                self.type_into(functions[0], "")
            self.type_into(fields[0], value)

    def save(self) -> Outcome:
        form = self.css("form input[type=submit][value=Save]")[0]
        self.js_click(form)
        self.wait(lambda: self._gone(form), "the save")
        return self._outcome()

    def _gone(self, element) -> bool:
        from selenium.common.exceptions import StaleElementReferenceException
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True

    def _outcome(self) -> Outcome:
        self.wait(lambda: self.driver.execute_script("return document.readyState") == "complete",
                  "the page")
        errors = self.css(".error")
        if errors:
            return Outcome(False, " ".join(e.text for e in errors))
        messages = self.css(".message")
        return Outcome(True, " ".join(m.text for m in messages))

    def call(self, procedure: str, **arguments: str | None) -> Outcome:
        self.driver.get(self.page(call=procedure))
        button = self.wait(lambda: self.css("form input[type=submit][value=Call]"),
                           f"the Call form of {procedure}")[0]
        for name, value in arguments.items():
            fields = self.css(f"[name='fields[{name}]']")
            assert fields, (f"Adminer's Call form of {procedure} has no field {name} "
                            f"(fields: {[f.get_attribute('name') for f in self.css('form [name]')]})")
            if value is None:
                self.type_into(self.css(f"select[name='function[{name}]']")[0], "NULL")
            else:
                self.type_into(fields[0], value)
        self.js_click(button)
        self.wait(lambda: self._gone(button), "the call")
        outcome = self._outcome()
        results = self.css("table.nowrap, table#table")
        if outcome.ok and results:
            return Outcome(True, " ".join([outcome.text, *(r.text for r in results)]).strip())
        return outcome


class PhpMyAdmin(AdminTool):
    """phpMyAdmin 5.2: its edit form writes the columns that changed (`UPDATE ... SET
    <changed columns> WHERE <the row's unique key, or every column> LIMIT 1`)."""

    name = "phpMyAdmin"

    def index(self, **query) -> str:
        return self.url + "index.php?" + urllib.parse.urlencode(query)

    def login(self, user: str, password: str, database: str) -> None:
        self.fresh_session()
        self.database = database
        self.driver.get(self.url)
        self.wait(lambda: self.css("input[name=pma_username]"), "the login form")
        self.type_into(self.css("input[name=pma_username]")[0], user)
        self.type_into(self.css("input[name=pma_password]")[0], password)
        self.js_click(self.css("#input_go")[0])
        self.wait(lambda: self.css("#pma_navigation") or self.css(".alert-danger:not(.hide)"),
                  "the login")
        errors = [e.text for e in self.css(".alert-danger") if e.is_displayed()]
        assert not errors, f"phpMyAdmin login as {user} refused: {errors}"
        self.session_token = self.token()

    def _settled(self) -> bool:
        """The page is loaded and phpMyAdmin's AJAX loader is not showing."""
        return self.driver.execute_script(
            "return document.readyState === 'complete' && (!window.jQuery || jQuery.active === 0)")

    def edit(self, table: str, key: dict[str, object]) -> None:
        """The table browsed with a WHERE on the key, then the row's Edit link."""
        where = " AND ".join(f"`{c}` = '{v}'" for c, v in key.items())
        # As the SQL box sends it (phpMyAdmin runs a query only when it is POSTed with the
        # session's token).
        self.post(self.url + "index.php?route=/sql",
                  {"db": self.database, "table": table, "token": self.session_token,
                   "sql_query": f"SELECT * FROM `{table}` WHERE {where}"})
        self.wait(self._settled, f"the {table} list")
        self.wait(lambda: self.css("td.edit_row_anchor a") or self.css(".alert-danger")
                  or self.css(".alert-success"), f"the {table} list")
        links = self.css("td.edit_row_anchor a")
        assert len(links) == 1, (f"phpMyAdmin: {table} {key} lists "
                                 f"{self.text_of('#page_content')[:600]!r}")
        self.js_click(links[0])
        self.wait(lambda: self.css("form#insertForm input[name^='where_clause']"),
                  f"the {table} edit form")
        self.wait(self._settled, f"the {table} edit form")

    def token(self) -> str:
        """The session's form token (phpMyAdmin's pages carry it in CommonParams)."""
        return self.driver.execute_script(
            "return (window.CommonParams && CommonParams.get('token')) || "
            "(document.querySelector('input[name=token]') || {}).value")

    def post(self, action: str, fields: dict[str, str]) -> None:
        """Submit a form of `fields` to `action` (a full page load)."""
        self.driver.execute_script(
            "const f = document.createElement('form'); f.method = 'post';"
            "f.action = arguments[0];"
            "for (const [k, v] of Object.entries(arguments[1])) {"
            "  const i = document.createElement('input'); i.type = 'hidden'; i.name = k;"
            "  i.value = v; f.appendChild(i); }"
            "document.body.appendChild(f); f.submit();", action, fields)
        self.wait(lambda: self.driver.execute_script(
            "return document.readyState === 'complete' && !document.querySelector("
            "'form[action=\"' + arguments[0] + '\"]')", action), "the page")

    def new(self, table: str) -> None:
        self.driver.get(self.index(route="/table/change", db=self.database, table=table))
        self.wait(lambda: self.css("form#insertForm"), f"the Insert form of {table}")
        self.wait(self._settled, f"the Insert form of {table}")

    def _hash(self, column: str) -> str:
        found = self.driver.execute_script(
            "for (const e of document.querySelectorAll("
            "  \"input[name^='fields_name[multi_edit][0]']\"))"
            "  if (e.value === arguments[0]) return e.name.slice(e.name.lastIndexOf('[') + 1, -1);"
            "return null;", column)
        assert found, f"phpMyAdmin's form has no field {column}"
        return found

    def fill(self, **values: str | None) -> None:
        for column, value in values.items():
            h = self._hash(column)
            field = self.css(f"[name='fields[multi_edit][0][{h}]']")[0]
            null = self.css(f"input[name='fields_null[multi_edit][0][{h}]']")
            if value is None:
                assert null, f"phpMyAdmin: {column} cannot be NULL"
                if not null[0].is_selected():
                    self.js_click(null[0])
                continue
            if null and null[0].is_selected():   # NULL off first: its handler clears the field
                self.js_click(null[0])
            self.type_into(field, value)
            assert not null or not null[0].is_selected(), f"phpMyAdmin: {column} stayed NULL"

    def _clear_messages(self) -> None:
        self.driver.execute_script(
            "document.querySelectorAll('.alert-success, .alert-danger, .alert-primary')"
            ".forEach(e => e.remove())")

    def _message(self) -> Outcome | None:
        for element in self.css(".alert-danger, .alert-success, .alert-primary"):
            if not element.is_displayed():
                continue
            text = element.text.strip()
            if "danger" in element.get_attribute("class"):
                said = text.split("MySQL said:", 1)[-1].strip()
                return Outcome(False, said)
            return Outcome(True, text)
        return None

    def save(self) -> Outcome:
        self._clear_messages()
        buttons = [b for b in self.css("form#insertForm input[type=submit]")
                   if b.is_displayed()]
        self.js_click(buttons[-1])
        return self.wait(self._message, "the save's message")

    def call(self, procedure: str, **arguments: str | None) -> Outcome:
        """The Routines page's Execute dialog of `procedure`."""
        self.driver.get(self.index(route="/database/routines", db=self.database))
        self.wait(self._settled, "the routines list")
        anchors = self.wait(lambda: [a for a in self.css("a.exec_anchor")
                                     if f"item_name={procedure}&" in
                                     (a.get_attribute("href") or "") + "&"],
                            f"the Execute link of {procedure}")
        self.js_click(anchors[0])
        dialog = self.wait(lambda: self.css(".rte_form, form.rte_form"),
                           f"the Execute dialog of {procedure}")[0]
        for name, value in arguments.items():
            fields = self.css(f"[name='params[{name}]']")
            assert fields, (f"phpMyAdmin's Execute form of {procedure} has no field {name}: "
                            f"{dialog.text[:300]!r}")
            self.type_into(fields[0], "" if value is None else value)
        self._clear_messages()
        buttons = [b for b in self.css(".modal-footer button, .ui-dialog-buttonpane button")
                   if b.is_displayed() and b.text.strip() in ("Go", "Execute")]
        assert buttons, f"phpMyAdmin: no Go button in the Execute dialog of {procedure}"
        self.js_click(buttons[0])
        outcome = self.wait(self._message, f"the result of {procedure}")
        if not outcome.ok:
            return outcome
        # The result sets are shown after the success message, in the same block.
        shown = self.driver.execute_script(
            "const m = [...document.querySelectorAll('.alert-success')]"
            "  .find(e => e.offsetParent !== null);"
            "let text = '';"
            "for (let e = m && m.nextElementSibling; e && !e.matches('form, .alert'); "
            "     e = e.nextElementSibling) text += ' ' + e.innerText;"
            "return text;")
        return Outcome(True, f"{outcome.text} {shown}".strip())
