#!/usr/bin/env bash
# The private MariaDB and Redis that scripts/setup.sh starts when nothing answers on the
# configured local ports (one directory per port: .data/mysql-<port>/, .data/redis-<port>/).
#
#   bash scripts/services.sh status          # which private servers exist and run
#   bash scripts/services.sh start           # start them (runs scripts/setup.sh)
#   bash scripts/services.sh stop            # stop the private servers of the configured ports
#   bash scripts/services.sh reset           # stop them and delete their data (all databases!)
#   bash scripts/services.sh stop --all      # every private server under .data/, whatever port
#
# Ports come from PEP_DB_PORT / PEP_REDIS_PORT, else config.ini, else 3306 / 6379 (add --test to
# let PEP_TEST_MYSQL_PORT / PEP_TEST_REDIS_PORT win, as scripts/test.sh does). Only servers this
# script's setup started are touched (their pid files are under .data/); a system MariaDB or
# Redis is never stopped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ACTION="${1:-}"
[ $# -gt 0 ] && shift
ALL=0
WITH_TEST=0
for arg in "$@"; do
    case "$arg" in
        --all) ALL=1 ;;
        --test) WITH_TEST=1 ;;
        *) echo "services: unknown argument $arg" >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/common.sh
. scripts/common.sh

say() { printf '[services] %s\n' "$*"; }

# the directories this invocation acts on
dirs() {
    if [ "$ALL" = 1 ]; then
        ls -d .data/mysql-* .data/redis-* 2>/dev/null || true
    else
        echo "$MYSQL_DIR"
        echo "$REDIS_DIR"
    fi
}

pid_of() {  # pid_of DIR: the pid of the server living in DIR, if it runs
    local file
    for file in "$1/mysqld.pid" "$1/redis.pid"; do
        if [ -s "$file" ]; then
            local pid
            pid="$(tr -dc '0-9' <"$file")"
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                echo "$pid"
                return 0
            fi
        fi
    done
    return 1
}

stop_dir() {
    local dir="$1" pid i
    if ! pid="$(pid_of "$dir")"; then
        [ -d "$dir" ] && say "$dir: not running"
        return 0
    fi
    say "$dir: stopping pid $pid"
    kill -TERM "$pid"
    for i in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { say "$dir: stopped"; return 0; }
        sleep 0.5
    done
    say "$dir: still running after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

case "$ACTION" in
    status)
        found=0
        for dir in $(dirs); do
            [ -d "$dir" ] || continue
            found=1
            if pid="$(pid_of "$dir")"; then say "$dir: running (pid $pid)"; else say "$dir: stopped"; fi
        done
        [ "$found" = 1 ] || say "no private servers for MySQL port $DB_PORT / Redis port $REDIS_PORT"
        listening "$DB_HOST" "$DB_PORT" && say "MySQL answers on $DB_HOST:$DB_PORT" \
            || say "nothing answers on $DB_HOST:$DB_PORT (MySQL)"
        listening "$REDIS_HOST" "$REDIS_PORT" && say "Redis answers on $REDIS_HOST:$REDIS_PORT" \
            || say "nothing answers on $REDIS_HOST:$REDIS_PORT (Redis)"
        ;;
    start)
        if [ "$WITH_TEST" = 1 ]; then exec bash scripts/setup.sh --test; else exec bash scripts/setup.sh; fi
        ;;
    stop)
        for dir in $(dirs); do stop_dir "$dir"; done
        ;;
    reset)
        for dir in $(dirs); do
            stop_dir "$dir"
            if [ -d "$dir" ]; then
                rm -rf -- "$dir"
                say "$dir: deleted"
            fi
        done
        say "the next scripts/setup.sh (or run.sh / test.sh) starts fresh servers"
        ;;
    *)
        sed -n '2,14p' "$0"
        exit 2
        ;;
esac
