#!/usr/bin/env bash
# Set everything up, prepare the database and start the server:
#
#   bash scripts/run.sh [--config PATH] [other pep.py arguments]
#
# 1. scripts/setup.sh (packages, .venv, codec, MySQL and Redis if none is running);
# 2. `pep.py init-db` (creates missing tables and seed rows only; never drops anything);
# 3. a demo account `demo` with a random password, unless a user `demo` already exists; the
#    credentials are printed and kept in .data/demo-account.txt (mode 600);
# 4. exec `pep.py` with the arguments given to this script.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

# Pass --config on to init-db and the demo-account step too.
CONFIG_ARGS=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --config) CONFIG_ARGS=(--config "${args[$((i + 1))]:-config.ini}") ;;
        --config=*) CONFIG_ARGS=(--config "${args[$i]#--config=}") ;;
    esac
done

echo "[run] pep.py init-db"
.venv/bin/python pep.py "${CONFIG_ARGS[@]}" init-db

echo "[run] demo account"
mkdir -p .data
.venv/bin/python - "${CONFIG_ARGS[@]}" <<'PY'
import asyncio
import os
import secrets
import sys

sys.path.insert(0, os.getcwd())
from common import db as db_module, schema
from helpers import config as config_module

path = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--config" else "config.ini"
cfg = config_module.load(path)
creds = os.path.join(".data", "demo-account.txt")


async def main() -> None:
    db = db_module.Database(cfg.db)
    try:
        row = await db.fetch_one(
            "SELECT id FROM users WHERE username_safe = %s", (schema.safe_username("demo"),)
        )
        if row is not None:
            hint = f" (credentials saved at creation: {creds})" if os.path.exists(creds) else ""
            print(f"[run] a user 'demo' already exists (id {row['id']}); not changing it{hint}")
            return
        password = secrets.token_urlsafe(12)
        user_id = await schema.add_user(db, cfg.stack.flavour, "demo", password, privileges=3)
    finally:
        db.close()
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"database {cfg.db.database}\nuser id  {user_id}\nusername demo\npassword {password}\n")
    print("[run] ------------------------------------------------")
    print(f"[run] demo account created (user id {user_id})")
    print("[run]   username: demo")
    print(f"[run]   password: {password}")
    print(f"[run] (also saved in {creds})")
    print("[run] ------------------------------------------------")


asyncio.run(main())
PY

echo "[run] starting pep.py $*"
exec .venv/bin/python pep.py "$@"
