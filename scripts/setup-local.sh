# Sourced by scripts/serve and scripts/test: make sure MariaDB is installed, running and
# reachable, and that .venv holds this checkout with its test dependencies.
# Idempotent and quiet when everything is already there.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ICT_VENV:-$REPO_ROOT/.venv}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  echo "setup: installing $* with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

mariadb_answers() {
  mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1 \
    || mysqladmin -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1
}

ensure_mariadb() {
  if [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
  fi
  if ! mariadb_answers; then
    echo "setup: starting MariaDB" >&2
    if [ ! -d /run/mysqld ]; then
      as_root mkdir -p /run/mysqld
      as_root chown mysql:mysql /run/mysqld
    fi
    # --pidfile too: --exec alone matches any other mariadbd on the machine (a Galera test
    # node, a private server) and would report "already running" without starting ours.
    as_root start-stop-daemon --start --oknodo --background \
      --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do
      mariadb_answers && break
      sleep 1
    done
    mariadb_answers || { echo "setup: MariaDB did not start within 60 s" >&2; return 1; }
  fi
  ensure_tcp_login
  ensure_event_scheduler
}

# Client database logins are locked and unlocked by a MariaDB event (schema/075, see
# docs/tenant-logins.md): the event scheduler must run now and after a restart.
ensure_event_scheduler() {
  local conf=/etc/mysql/mariadb.conf.d/60-ictcontact.cnf
  if [ -d /etc/mysql/mariadb.conf.d ] && [ ! -f "$conf" ]; then
    printf '[mariadbd]\nevent_scheduler = ON\n' | as_root tee "$conf" >/dev/null 2>&1 \
      || echo "setup: could not write $conf; set event_scheduler = ON in the server config" >&2
  fi
  if [ "$(admin_sql -N -e 'SELECT @@GLOBAL.event_scheduler')" != "ON" ]; then
    echo "setup: turning the MariaDB event scheduler on" >&2
    admin_sql -e "SET GLOBAL event_scheduler = ON"
  fi
}

# The mysql client as an account that may change server settings.
admin_sql() {
  if mysql -h127.0.0.1 -P3306 -uroot -e "SELECT 1" >/dev/null 2>&1; then
    mysql -h127.0.0.1 -P3306 -uroot "$@"
  else
    as_root mysql --protocol=socket -uroot "$@"
  fi
}

# The Galera fault tests (tests/faults/test_galera.py) run a private 3-node cluster: they
# need the Galera provider, mariadb-backup and socat (state transfer), and `ss` (the SST
# scripts' socket check). A fresh machine gets them here.
ensure_galera_test_tools() {
  local missing=()
  [ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
  command -v mariadb-backup >/dev/null 2>&1 || missing+=(mariadb-backup)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# The real-browser test of the admin tools (tests/admin_tools/) serves Debian's stock
# Adminer and phpMyAdmin with `php -S` and drives headless Chromium through chromedriver.
# php-cgi satisfies adminer's web-server dependency (its first alternative is Apache);
# dbconfig-no-thanks and the preseed keep phpmyadmin's package from asking anything or
# configuring a web server or a database of its own.
ensure_browser_test_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  [ -d /usr/share/adminer ] || missing+=(adminer)
  [ -d /usr/share/phpmyadmin ] || missing+=(phpmyadmin dbconfig-no-thanks)
  command -v php >/dev/null 2>&1 || missing+=(php-cli php-cgi)
  # (grep without -q reads to the end: under pipefail, -q would fail php -m on SIGPIPE)
  php -m 2>/dev/null | grep -x mysqli >/dev/null || missing+=(php-mysql)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get (browser test of the admin tools)" >&2
    as_root debconf-set-selections <<'PRESEED'
phpmyadmin phpmyadmin/dbconfig-install boolean false
phpmyadmin phpmyadmin/reconfigure-webserver multiselect
PRESEED
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o DPkg::Lock::Timeout=600 --no-install-recommends \
      php-cli php-cgi "${missing[@]}" >/dev/null
  fi
}

# The shipped systemd units (systemd/) are checked by `systemd-analyze verify` and
# `systemd-analyze security` (tests/cli/test_systemd_units.py); a container image may lack it.
ensure_systemd_analyze() {
  command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
}

# Tests and the Quick start use root with an empty password over TCP (as on the
# development machines). A stock Debian install lets root in only through the socket:
# there, create a local `ictcontact` account and point the defaults at it instead.
ensure_tcp_login() {
  if mysql -h127.0.0.1 -P3306 -uroot -e "SELECT 1" >/dev/null 2>&1; then
    return 0
  fi
  echo "setup: root cannot log in over TCP; using a local 'ictcontact' account" >&2
  as_root mysql --protocol=socket -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'ictcontact'@'127.0.0.1' IDENTIFIED BY 'ictcontact';
CREATE USER IF NOT EXISTS 'ictcontact'@'localhost' IDENTIFIED BY 'ictcontact';
GRANT ALL PRIVILEGES ON *.* TO 'ictcontact'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'ictcontact'@'localhost' WITH GRANT OPTION;
SQL
  export ICT_TEST_SERVER="${ICT_TEST_SERVER:-mysql+pymysql://ictcontact:ictcontact@127.0.0.1:3306}"
  export ICTCONTACT_DB="${ICTCONTACT_DB:-mysql+pymysql://ictcontact:ictcontact@127.0.0.1:3306/ictcontact}"
}

ensure_venv() {
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; }
  fi
  # Reinstall only when the packaging changed since the last install.
  local stamp="$VENV/.ictcontact-installed"
  if [ ! -f "$stamp" ] || [ "$REPO_ROOT/setup.cfg" -nt "$stamp" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "setup: installing the package and its test dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT[test]"
    touch "$stamp"
  fi
}
