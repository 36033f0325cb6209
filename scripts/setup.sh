#!/usr/bin/env bash
# Prepare this checkout to run pep.py: system packages, .venv, Python packages, the Cython
# codec, and a MySQL/MariaDB and a Redis to talk to. Idempotent: run it as often as you like.
#
#   bash scripts/setup.sh          # what `scripts/run.sh` needs
#   bash scripts/setup.sh --test   # also the test requirements (what `scripts/test.sh` needs)
#
# Meant for Debian 12 (bookworm) as root, non-interactive. It only installs what is missing.
# If nothing answers on the configured MySQL / Redis port of 127.0.0.1, it starts private
# servers with their data in .data/mysql-<port>/ and .data/redis-<port>/ (one directory per
# port); `bash scripts/services.sh stop|reset|status` stops them, wipes them, shows them.
#
# Ports and hosts come from PEP_DB_HOST / PEP_DB_PORT / PEP_REDIS_HOST / PEP_REDIS_PORT when
# set, else from config.ini ([db] and [redis]), else 127.0.0.1:3306 and 127.0.0.1:6379; with
# --test, PEP_TEST_MYSQL_HOST/PORT and PEP_TEST_REDIS_HOST/PORT (see tests/conftest.py) win
# (scripts/common.sh).
# Set PYTHON=/path/to/python3.11 to choose the interpreter the virtualenv is made from.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DEBIAN_FRONTEND=noninteractive
export CI="${CI:-true}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) WITH_TEST=1 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "setup: unknown argument $arg (expected --test)" >&2; exit 2 ;;
    esac
done

say()  { printf '[setup] %s\n' "$*"; }
warn() { printf '[setup] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- configuration

# DB_HOST/DB_PORT/DB_USER/DB_PASS, REDIS_HOST/REDIS_PORT, MYSQL_DIR/REDIS_DIR, listening, is_local
# shellcheck source=scripts/common.sh
. scripts/common.sh

# ---------------------------------------------------------------- system packages

HAVE_APT=0
command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 && HAVE_APT=1
APT_UPDATED=0

pkg_installed() {
    [ "$HAVE_APT" = 1 ] && dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

apt_install() {
    # apt_install PKG...: install the packages that are not installed yet.
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$HAVE_APT" != 1 ]; then
        warn "no apt-get here; please install: ${missing[*]}"
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        warn "not root; please install: ${missing[*]} (apt-get install ${missing[*]})"
        return 1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        say "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

if [ "$HAVE_APT" = 1 ]; then
    apt_install gcc pkg-config libmariadb-dev || warn "build tools are missing: mysqlclient may fail to build"
    if [ "$WITH_TEST" = 1 ]; then
        # the README's TLS proxy recipe is tested with a real nginx and an openssl certificate,
        # and its "check it works" commands with curl (tests/integration/test_readme.py)
        apt_install nginx openssl curl || warn "nginx/openssl/curl are missing: the README recipe tests will fail"
        # the scripted IRC session of tests/integration/test_irc_irssi.py (docs/irc.md)
        DEBIAN_FRONTEND=noninteractive apt_install irssi tmux || warn "irssi/tmux missing: the irssi test will be skipped"
    fi
else
    say "not a Debian system: skipping package installation"
fi

# ---------------------------------------------------------------- virtualenv

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || { apt_install python3 || true; }
command -v "$PY" >/dev/null 2>&1 || die "python3 not found (set PYTHON=/path/to/python3.11)"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
    || die "$("$PY" -V 2>&1) is too old: pep.py needs Python 3.11 or newer (set PYTHON=...)"

venv_ok() { [ -x .venv/bin/python ] && .venv/bin/python -m pip --version >/dev/null 2>&1; }

if venv_ok; then
    say ".venv exists ($(.venv/bin/python -V 2>&1))"
else
    [ -e .venv ] && { warn ".venv is incomplete (no pip): re-creating it"; rm -rf .venv; }
    say "creating .venv with $("$PY" -V 2>&1)"
    if ! "$PY" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        apt_install python3-venv || true
        "$PY" -m venv .venv || die "cannot create the virtualenv (install python3-venv)"
    fi
    venv_ok || die ".venv has no pip"
fi

# C extensions (mysqlclient, the Cython codec) need Python.h.
if ! .venv/bin/python -c 'import os, sysconfig; raise SystemExit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)'; then
    apt_install python3-dev || warn "Python headers are missing: C extensions will not build"
fi

say "pip install -r requirements.txt"
.venv/bin/python -m pip install -q -r requirements.txt
if [ "$WITH_TEST" = 1 ]; then
    say "pip install -r requirements-test.txt"
    .venv/bin/python -m pip install -q -r requirements-test.txt
fi

# ---------------------------------------------------------------- Cython codec

mkdir -p .data
if [ -f setup.py ]; then
    say "building the Cython codec (setup.py build_ext --inplace)"
    if .venv/bin/python setup.py build_ext --inplace >.data/build_ext.log 2>&1; then
        if grep -q "WARNING" .data/build_ext.log; then
            grep "WARNING" .data/build_ext.log | sed 's/^/[setup] /' >&2
            warn "the codec was not compiled (log: .data/build_ext.log); the pure-Python codec will be used"
        else
            say "codec built"
        fi
    else
        tail -n 20 .data/build_ext.log >&2 || true
        warn "building the Cython codec failed (log: .data/build_ext.log); the pure-Python codec will be used"
    fi
else
    say "no setup.py: skipping the Cython build"
fi

# ---------------------------------------------------------------- MySQL / MariaDB

ensure_mysql() {
    if listening "$DB_HOST" "$DB_PORT"; then
        say "MySQL answers on $DB_HOST:$DB_PORT"
        return 0
    fi
    if ! is_local "$DB_HOST"; then
        warn "nothing answers on $DB_HOST:$DB_PORT and it is not local: start that MySQL yourself"
        return 0
    fi
    if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1 \
        && [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
        apt_install mariadb-server || die "no MySQL on $DB_HOST:$DB_PORT and mariadb-server cannot be installed"
        touch "$ROOT/.data/mariadb-installed-by-setup"
        # The package may have started the system service on the default port.
        sleep 1
        if listening "$DB_HOST" "$DB_PORT"; then
            say "MySQL answers on $DB_HOST:$DB_PORT (system service)"
            return 0
        fi
    fi
    local mysqld install_db datadir sock user_args=()
    mysqld="$(command -v mariadbd || command -v mysqld || ls /usr/sbin/mariadbd /usr/sbin/mysqld 2>/dev/null | head -n 1)"
    install_db="$(command -v mariadb-install-db || command -v mysql_install_db || true)"
    [ -n "$mysqld" ] || die "mariadbd not found"
    [ -n "$install_db" ] || die "mariadb-install-db not found"
    mkdir -p "$ROOT/$MYSQL_DIR"
    datadir="$ROOT/$MYSQL_DIR/data"
    sock="$ROOT/$MYSQL_DIR/mysqld.sock"
    [ "$(id -u)" = 0 ] && user_args=(--user=root)
    if [ ! -d "$datadir/mysql" ]; then
        say "initialising a private MariaDB in $MYSQL_DIR/data"
        mkdir -p "$datadir"
        "$install_db" --no-defaults --datadir="$datadir" "${user_args[@]}" \
            --auth-root-authentication-method=normal --skip-test-db \
            >"$ROOT/$MYSQL_DIR/install.log" 2>&1 \
            || { tail -n 20 "$ROOT/$MYSQL_DIR/install.log" >&2; die "mariadb-install-db failed"; }
    fi
    say "starting a private MariaDB on 127.0.0.1:$DB_PORT (data in $MYSQL_DIR)"
    setsid nohup "$mysqld" --no-defaults --datadir="$datadir" --socket="$sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$ROOT/$MYSQL_DIR/mysqld.pid" \
        --log-error="$ROOT/$MYSQL_DIR/mysqld.log" "${user_args[@]}" \
        --character-set-server=utf8mb4 </dev/null >/dev/null 2>&1 &
    local i
    for i in $(seq 1 60); do
        if listening 127.0.0.1 "$DB_PORT"; then
            say "private MariaDB is up (stop it with: bash scripts/services.sh stop)"
            return 0
        fi
        sleep 0.5
    done
    tail -n 20 "$ROOT/$MYSQL_DIR/mysqld.log" >&2 || true
    die "the private MariaDB did not start (log: $MYSQL_DIR/mysqld.log)"
}

# ---------------------------------------------------------------- Redis

ensure_redis() {
    if listening "$REDIS_HOST" "$REDIS_PORT"; then
        say "Redis answers on $REDIS_HOST:$REDIS_PORT"
        return 0
    fi
    if ! is_local "$REDIS_HOST"; then
        warn "nothing answers on $REDIS_HOST:$REDIS_PORT and it is not local: start that Redis yourself"
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
        apt_install redis-server || die "no Redis on $REDIS_HOST:$REDIS_PORT and redis-server cannot be installed"
        sleep 1
        if listening "$REDIS_HOST" "$REDIS_PORT"; then
            say "Redis answers on $REDIS_HOST:$REDIS_PORT (system service)"
            return 0
        fi
    fi
    local redis
    redis="$(command -v redis-server || echo /usr/bin/redis-server)"
    mkdir -p "$ROOT/$REDIS_DIR"
    say "starting a private Redis on 127.0.0.1:$REDIS_PORT (data in $REDIS_DIR)"
    "$redis" --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$ROOT/$REDIS_DIR" \
        --pidfile "$ROOT/$REDIS_DIR/redis.pid" --logfile "$ROOT/$REDIS_DIR/redis.log" </dev/null >/dev/null
    local i
    for i in $(seq 1 40); do
        if listening 127.0.0.1 "$REDIS_PORT"; then
            say "private Redis is up (stop it with: bash scripts/services.sh stop)"
            return 0
        fi
        sleep 0.25
    done
    tail -n 20 "$ROOT/$REDIS_DIR/redis.log" >&2 || true
    die "the private Redis did not start (log: $REDIS_DIR/redis.log)"
}

# Can the configured account log in? (config.ini + PEP_DB_* overrides, at DB_HOST:DB_PORT)
mysql_login() {
    DB_HOST="$DB_HOST" DB_PORT="$DB_PORT" .venv/bin/python - <<'PY'
import os, sys
sys.path.insert(0, os.getcwd())
import MySQLdb
from helpers import config
cfg = config.load("config.ini").db
try:
    MySQLdb.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]), user=cfg.username,
                    passwd=cfg.password, connect_timeout=5).close()
except MySQLdb.Error as exc:
    print(f"{exc.args[0]}: {exc.args[-1]}")
    sys.exit(1)
PY
}

check_mysql_login() {
    local err
    if err="$(mysql_login 2>&1)"; then
        say "MySQL login as the configured user works"
        return 0
    fi
    # A mariadb-server that this script installed from Debian authenticates root only through
    # the unix socket. config.ini's default is root without a password over TCP, so allow that,
    # but only on a server we installed ourselves (marker file) and only for that default.
    if [ -f "$ROOT/.data/mariadb-installed-by-setup" ] && [ "$(id -u)" = 0 ] && is_local "$DB_HOST" \
        && [ "$DB_USER" = root ] && [ -z "$DB_PASS" ] \
        && command -v mariadb >/dev/null 2>&1 && mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
        say "allowing root@localhost without a password over TCP on the MariaDB installed by setup"
        mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
        if err="$(mysql_login 2>&1)"; then
            say "MySQL login as the configured user works"
            return 0
        fi
    fi
    warn "cannot log in to MySQL at $DB_HOST:$DB_PORT with the configured account: $err"
    warn "set [db] username/password in config.ini (or PEP_DB_USERNAME / PEP_DB_PASSWORD)"
}

ensure_mysql
check_mysql_login
ensure_redis

say "done"
