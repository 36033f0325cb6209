# Shared by scripts/setup.sh and scripts/services.sh (sourced, not run): where MySQL and Redis
# are, and where the private servers keep their data.
#
# Hosts and ports come from PEP_DB_HOST / PEP_DB_PORT / PEP_REDIS_HOST / PEP_REDIS_PORT when set,
# else from config.ini ([db] and [redis]), else 127.0.0.1:3306 and 127.0.0.1:6379: the same rules
# as pep.py itself (helpers/config.py). With WITH_TEST=1, PEP_TEST_MYSQL_HOST/PORT and
# PEP_TEST_REDIS_HOST/PORT win, as they do in tests/conftest.py.
#
# A private server gets one directory per port: .data/mysql-<port>/ and .data/redis-<port>/
# (data, socket, pid file and log inside), so two private servers never share files.

# ini_get SECTION KEY: value from config.ini (empty if absent); ';' and '#' comments ignored.
ini_get() {
    [ -f config.ini ] || return 0
    awk -v want_section="$1" -v want_key="$2" '
        /^[ \t]*[;#]/ { next }
        /^[ \t]*\[/ { gsub(/[ \t\[\]]/, ""); section = $0; next }
        section == want_section {
            line = $0
            eq = index(line, "=")
            if (eq == 0) next
            key = substr(line, 1, eq - 1); gsub(/[ \t]/, "", key)
            if (key != want_key) next
            value = substr(line, eq + 1)
            sub(/[ \t]+;.*$/, "", value)
            gsub(/^[ \t]+|[ \t]+$/, "", value)
            print value
            exit
        }' config.ini
}

DB_HOST="${PEP_DB_HOST:-$(ini_get db host)}";          DB_HOST="${DB_HOST:-127.0.0.1}"
DB_PORT="${PEP_DB_PORT:-$(ini_get db port)}";          DB_PORT="${DB_PORT:-3306}"
DB_USER="${PEP_DB_USERNAME-$(ini_get db username)}";   DB_USER="${DB_USER:-root}"
DB_PASS="${PEP_DB_PASSWORD-$(ini_get db password)}"
REDIS_HOST="${PEP_REDIS_HOST:-$(ini_get redis host)}"; REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${PEP_REDIS_PORT:-$(ini_get redis port)}"; REDIS_PORT="${REDIS_PORT:-6379}"

if [ "${WITH_TEST:-0}" = 1 ]; then
    DB_HOST="${PEP_TEST_MYSQL_HOST:-$DB_HOST}";    DB_PORT="${PEP_TEST_MYSQL_PORT:-$DB_PORT}"
    REDIS_HOST="${PEP_TEST_REDIS_HOST:-$REDIS_HOST}"; REDIS_PORT="${PEP_TEST_REDIS_PORT:-$REDIS_PORT}"
fi

case "$DB_PORT" in ''|*[!0-9]*) echo "bad MySQL port: $DB_PORT" >&2; exit 2 ;; esac
case "$REDIS_PORT" in ''|*[!0-9]*) echo "bad Redis port: $REDIS_PORT" >&2; exit 2 ;; esac

MYSQL_DIR=".data/mysql-$DB_PORT"      # data/, mysqld.sock, mysqld.pid, mysqld.log
REDIS_DIR=".data/redis-$REDIS_PORT"   # dump, redis.pid, redis.log

is_local() { case "$1" in 127.0.0.1|localhost|::1) return 0 ;; *) return 1 ;; esac; }

# listening HOST PORT: true when something accepts TCP connections there.
listening() {
    local host="$1"
    [ "$host" = localhost ] && host=127.0.0.1
    timeout 2 bash -c "exec 3<>/dev/tcp/$host/$2" >/dev/null 2>&1
}
