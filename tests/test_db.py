"""common.db and common.schema against a real MariaDB/MySQL (no mocks).

Every database used here is created as ``pep_test_<random hex>`` and dropped at the end of the
module. The server is ``PEP_TEST_MYSQL_HOST/PORT/USER/PASSWORD`` when set (as in
tests/conftest.py), else the ``[db]`` defaults with ``PEP_DB_*`` overrides; ``scripts/test.sh``
makes sure one is running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import secrets
import subprocess
import sys
import time

import bcrypt
import MySQLdb
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common import db as db_module  # noqa: E402
from tests.waiting import wait_until  # noqa: E402
from common import schema  # noqa: E402
from helpers import config as config_module  # noqa: E402


def _base_cfg() -> config_module.DbConfig:
    """The server to test against: PEP_TEST_MYSQL_* (as tests/conftest.py) if set, otherwise
    the [db] defaults with PEP_DB_* overrides."""
    cfg = config_module.load(None).db
    env = os.environ
    return dataclasses.replace(
        cfg,
        host=env.get("PEP_TEST_MYSQL_HOST", cfg.host),
        port=int(env.get("PEP_TEST_MYSQL_PORT", cfg.port)),
        username=env.get("PEP_TEST_MYSQL_USER", cfg.username),
        password=env.get("PEP_TEST_MYSQL_PASSWORD", cfg.password),
    )


BASE_CFG = _base_cfg()


def run(coro):
    return asyncio.run(coro)


def raw_connect(database: str | None = None):
    kwargs = dict(
        host=BASE_CFG.host,
        port=BASE_CFG.port,
        user=BASE_CFG.username,
        passwd=BASE_CFG.password,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=5,
    )
    if database:
        kwargs["db"] = database
    return MySQLdb.connect(**kwargs)


@pytest.fixture(scope="module")
def make_database():
    """Factory: ``make_database()`` creates a fresh ``pep_test_<hex>`` database through
    Database.create_database_if_missing and returns a Database bound to it. Everything is
    closed and dropped at module teardown."""
    created: list[tuple[str, db_module.Database]] = []

    def factory(workers: int = 2) -> db_module.Database:
        name = f"pep_test_{secrets.token_hex(6)}"
        cfg = dataclasses.replace(BASE_CFG, database=name, workers=workers)
        database = db_module.Database(cfg)
        created.append((name, database))
        assert run(database.create_database_if_missing()) is True
        assert run(database.create_database_if_missing()) is False  # second time: exists
        return database

    yield factory

    conn = raw_connect()
    try:
        cur = conn.cursor()
        for name, database in created:
            database.close()
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def table_names(database: db_module.Database) -> set[str]:
    rows = run(
        database.fetch_all("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
    )
    return {r["t"] for r in rows}


# ------------------------------------------------------------------------------ Database


def test_basic_queries_and_types(make_database):
    database = make_database()
    run(database.execute("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(32), n BIGINT)"))
    res = run(database.execute("INSERT INTO t (name, n) VALUES (%s, %s)", ("ａｂｃ 🎵", 2**40)))
    assert isinstance(res, db_module.ExecResult)
    assert res.lastrowid == 1 and res.rowcount == 1
    count = run(database.execute_many("INSERT INTO t (name, n) VALUES (%s, %s)", [("b", 2), ("c", 3), ("d", 4)]))
    assert count == 3
    assert run(database.execute_many("INSERT INTO t (name, n) VALUES (%s, %s)", [])) == 0

    row = run(database.fetch_one("SELECT id, name, n FROM t WHERE id = %s", (1,)))
    assert row == {"id": 1, "name": "ａｂｃ 🎵", "n": 2**40}
    assert run(database.fetch_one("SELECT id FROM t WHERE name = %s", ("nope",))) is None
    rows = run(database.fetch_all("SELECT name FROM t WHERE n < %(limit)s ORDER BY id", {"limit": 4}))
    assert [r["name"] for r in rows] == ["b", "c"]
    assert run(database.fetch_all("SELECT name FROM t WHERE n > 99999999999999")) == []
    assert run(database.fetch_value("SELECT COUNT(*) FROM t")) == 4
    assert run(database.fetch_value("SELECT n FROM t WHERE id = 99", default=-1)) == -1

    # values are never formatted into SQL: an injection attempt is just a string
    evil = "x' OR '1'='1"
    assert run(database.fetch_one("SELECT id FROM t WHERE name = %s", (evil,))) is None
    # no args: SQL is sent verbatim, a literal % needs no escaping
    assert len(run(database.fetch_all("SELECT name FROM t WHERE name LIKE 'a%'"))) == 0

    upd = run(database.execute("UPDATE t SET n = n + 1 WHERE n < %s", (4,)))
    assert upd.rowcount == 2 and upd.lastrowid == 0


def test_transaction_commits_and_rolls_back(make_database):
    database = make_database()
    run(database.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB"))

    def good(cur):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (1, 10))
        cur.execute("INSERT INTO t VALUES (%s, %s)", (2, 20))
        cur.execute("SELECT SUM(v) AS s FROM t")
        return int(cur.fetchone()["s"])

    assert run(database.transaction(good)) == 30

    def bad(cur):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (3, 30))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(database.transaction(bad))

    def dup(cur):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (4, 40))
        cur.execute("INSERT INTO t VALUES (%s, %s)", (1, 99))  # duplicate key

    with pytest.raises(db_module.DatabaseError) as info:
        run(database.transaction(dup))
    assert info.value.code == 1062
    rows = run(database.fetch_all("SELECT id, v FROM t ORDER BY id"))
    assert rows == [{"id": 1, "v": 10}, {"id": 2, "v": 20}]


def test_batch_runs_statements_in_one_transaction_and_rolls_back_a_failed_one(make_database):
    """Database.batch: the rows of each statement in order ([] for a write), values escaped by
    the driver (quotes, semicolons and backslashes stay values), all or nothing."""
    database = make_database(workers=1)
    run(database.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB"))
    nasty = "x'); DROP TABLE t; -- \\ ;"
    results = run(database.batch([
        ("INSERT INTO t VALUES (%s, %s)", (1, nasty)),
        ("SELECT v FROM t WHERE id = %s", (1,)),
        ("UPDATE t SET v = CONCAT(v, %s) WHERE id = %s", ("!", 1)),
        ("SELECT id, v FROM t WHERE id > %s ORDER BY id", (0,)),
        ("SELECT v FROM t WHERE id = %s", (99,)),
        ("SELECT COUNT(*) AS n FROM t WHERE v LIKE 'x%'", ()),  # no args: sent as it is
    ]))
    assert results == [[], [{"v": nasty}], [], [{"id": 1, "v": nasty + "!"}], [], [{"n": 1}]]
    conn_id = run(database.fetch_value("SELECT CONNECTION_ID()"))

    with pytest.raises(db_module.DatabaseError) as info:
        run(database.batch([
            ("INSERT INTO t VALUES (%s, %s)", (2, "kept?")),
            ("INSERT INTO t VALUES (%s, %s)", (1, "duplicate")),
            ("INSERT INTO t VALUES (%s, %s)", (3, "never run")),
        ]))
    assert info.value.code == 1062
    with pytest.raises(db_module.DatabaseError) as info:
        run(database.batch([("INSERT INTO t VALUES (%s, %s)", (4, "kept?")), ("SELECT * FROM missing", ())]))
    assert info.value.code == 1146
    # nothing of the failed batches stays, and the same connection goes on working (no
    # transaction left open, no result left unread)
    assert run(database.fetch_all("SELECT id FROM t ORDER BY id")) == [{"id": 1}]
    assert run(database.fetch_value("SELECT @@in_transaction")) == 0
    assert run(database.fetch_value("SELECT CONNECTION_ID()")) == conn_id
    # a connection that died while idle is replaced and the batch runs once
    kill_connection(conn_id)
    assert run(database.batch([("INSERT INTO t VALUES (%s, %s)", (5, "after")), ("SELECT COUNT(*) AS n FROM t", ())])) \
        == [[], [{"n": 2}]]


def test_bad_query_raises_database_error(make_database):
    database = make_database()
    with pytest.raises(db_module.DatabaseError) as info:
        run(database.fetch_one("SELEC nonsense"))
    assert info.value.code == 1064
    assert isinstance(info.value.orig, MySQLdb.Error)
    with pytest.raises(db_module.DatabaseError) as info:
        run(database.fetch_all("SELECT * FROM no_such_table"))
    assert info.value.code == 1146
    # wrong number of parameters is also a DatabaseError, not a TypeError
    with pytest.raises(db_module.DatabaseError):
        run(database.fetch_one("SELECT %s, %s", (1,)))
    # the pool still works afterwards
    assert run(database.fetch_value("SELECT 1 + 1")) == 2


def kill_connection(connection_id: int) -> None:
    """KILL MariaDB connection ``connection_id`` from another connection and wait until it is gone."""
    killer = raw_connect()
    try:
        killer.cursor().execute("KILL %s", (connection_id,))
    finally:
        killer.close()
    wait_gone(connection_id)


def wait_gone(connection_id: int) -> None:
    """Wait until MariaDB has really closed connection ``connection_id`` (KILL is asynchronous)."""
    def gone() -> bool:
        conn = raw_connect()
        try:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (connection_id,))
            return cur.fetchone()[0] == 0
        finally:
            conn.close()

    wait_until(gone, what=f"connection {connection_id} closed")


def test_reconnects_after_connection_killed(make_database):
    database = make_database(workers=1)
    first_id = run(database.fetch_value("SELECT CONNECTION_ID()"))
    kill_connection(first_id)
    row = run(database.fetch_one("SELECT CONNECTION_ID() AS cid, 41 + 1 AS answer"))
    assert row["answer"] == 42
    assert row["cid"] != first_id

    # a transaction on a connection that died while idle is retried too
    second_id = row["cid"]
    kill_connection(second_id)

    def tx(cur):
        cur.execute("SELECT CONNECTION_ID() AS cid")
        return cur.fetchone()["cid"]

    assert run(database.transaction(tx)) not in (first_id, second_id)


def test_unreachable_server_fails_fast_without_password():
    cfg = dataclasses.replace(BASE_CFG, host="127.0.0.1", port=1, password="s3cret-Passw0rd", database="x")
    database = db_module.Database(cfg)
    try:
        start = time.monotonic()
        with pytest.raises(db_module.DatabaseError) as info:
            run(database.fetch_one("SELECT 1"))
        assert time.monotonic() - start < 8
        assert info.value.code in (2002, 2003)
        assert "s3cret-Passw0rd" not in str(info.value)
    finally:
        database.close()


def test_silent_server_times_out_instead_of_hanging():
    """A peer that accepts TCP but never sends the MySQL handshake: connect_timeout applies."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    cfg = dataclasses.replace(BASE_CFG, host="127.0.0.1", port=listener.getsockname()[1])
    database = db_module.Database(cfg)
    try:
        start = time.monotonic()
        with pytest.raises(db_module.DatabaseError):
            run(database.fetch_one("SELECT 1"))
        elapsed = time.monotonic() - start
        assert cfg.connect_timeout - 1 <= elapsed < cfg.connect_timeout + 4
    finally:
        database.close()
        listener.close()


def test_wrong_password_message_has_no_password():
    secret = "hunter2-" + secrets.token_hex(4)
    cfg = dataclasses.replace(BASE_CFG, username="pep_no_such_user", password=secret)
    database = db_module.Database(cfg)
    try:
        with pytest.raises(db_module.DatabaseError) as info:
            run(database.ping())
        assert info.value.code in (1045, 1698)
        assert secret not in str(info.value)
    finally:
        database.close()


def test_closed_pool_raises():
    database = db_module.Database(BASE_CFG)
    database.close()
    database.close()  # twice is fine
    with pytest.raises(db_module.DatabaseError):
        run(database.fetch_one("SELECT 1"))


@pytest.mark.parametrize("name", ["bad-name", "x`; DROP DATABASE mysql; --", "", "a b"])
def test_create_database_rejects_bad_names(name):
    database = db_module.Database(dataclasses.replace(BASE_CFG, database=name))
    try:
        with pytest.raises(ValueError):
            run(database.create_database_if_missing())
    finally:
        database.close()


def test_concurrent_queries_use_the_pool(make_database):
    database = make_database(workers=4)

    async def many():
        return await asyncio.gather(*(database.fetch_one("SELECT SLEEP(0.2) AS s, CONNECTION_ID() AS c") for _ in range(8)))

    start = time.monotonic()
    rows = run(many())
    elapsed = time.monotonic() - start
    assert len({r["c"] for r in rows}) == 4  # one connection per worker thread
    assert elapsed < 1.5  # 8 × 0.2 s on 4 workers ≈ 0.4 s, not 1.6 s


# ------------------------------------------------------------------------------ init-db


@pytest.mark.parametrize("flavour", schema.FLAVOURS)
def test_init_db_creates_tables_and_seeds(make_database, flavour):
    database = make_database()
    lines = run(schema.init_db(database, flavour, bot_id=999))
    tables = table_names(database)
    expected = set(schema.tables_for(flavour))
    assert expected <= tables
    for table in expected:
        assert f"created table {table}" in lines
    if flavour == "realistikosu":
        assert {"rx_stats", "ap_stats", "scores_relax", "scores_ap", "ban_logs", "chat_logs", "chat_chan_logs", "user_statuses"} <= tables
        assert "users_stats_relax" not in tables
    else:
        assert "users_stats_relax" in tables and "rx_stats" not in tables
    assert ("ap_stats" in tables) == (flavour in ("kawata", "realistikosu"))

    bot = run(database.fetch_one("SELECT * FROM users WHERE id = 999"))
    bot_name = "RealistikBot" if flavour == "realistikosu" else "FokaBot"
    assert f"seeded bot user 999 ({bot_name})" in lines
    assert bot["username"] == bot_name and bot["username_safe"] == bot_name.lower()
    assert bot["privileges"] == (942669823 if flavour == "realistikosu" else 978427)
    assert bot["donor_expire"] == 2147483647
    assert bot["password_md5"].startswith("$2")
    for table in schema.stats_tables(flavour):
        row = run(database.fetch_one(f"SELECT id, username, country FROM `{table}` WHERE id = 999"))
        assert row == {"id": 999, "username": bot_name, "country": "XX"}, table

    settings = {
        r["name"]: (r["value_int"], r["value_string"])
        for r in run(database.fetch_all("SELECT name, value_int, value_string FROM bancho_settings"))
    }
    assert [r["name"] for r in run(database.fetch_all("SELECT name FROM bancho_settings ORDER BY id"))] == [
        "bancho_maintenance", "free_direct", "menu_icon", "login_messages",
        "restricted_joke", "login_notification", "osu_versions", "osu_md5s",
    ]
    assert settings["bancho_maintenance"][0] == 0
    assert settings["free_direct"][0] == 1
    assert settings["login_notification"][1] != ""

    channels = {
        r["name"]: (r["public_read"], r["public_write"], r["description"])
        for r in run(database.fetch_all("SELECT * FROM bancho_channels"))
    }
    assert channels["#osu"] == (1, 1, "Main osu! channel")
    assert channels["#announce"][:2] == (1, 0)
    assert channels["#admin"][:2] == (0, 0)
    assert channels["#lobby"][:2] == (1, 1)
    assert channels["#english"][:2] == (1, 1)
    assert channels["#ranked"][:2] == (1, 0)
    assert len(channels) == 6

    groups = {r["name"]: r["privileges"] for r in run(database.fetch_all("SELECT name, privileges FROM privileges_groups"))}
    assert groups["Developer"] == 1043995
    assert groups["Community Manager"] == 978427
    assert "Chat Mod" in groups and groups["Normal User"] == 3 and groups["Pending"] == 1048576

    # AUTO_INCREMENT of users starts at 1000 although the bot has id 999
    status = run(database.fetch_one("SELECT AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'"))
    assert status["ai"] == 1000


def test_init_db_is_idempotent_and_never_overwrites(make_database):
    database = make_database()
    first = run(schema.init_db(database, "kawata"))
    assert first
    # an operator changes seeded rows and deletes one channel
    run(database.execute("UPDATE bancho_settings SET value_int = 1 WHERE name = 'bancho_maintenance'"))
    run(database.execute("UPDATE bancho_channels SET description = 'ours' WHERE name = '#osu'"))
    run(database.execute("UPDATE users SET username = 'Bot', privileges = 3 WHERE id = 999"))
    run(database.execute("UPDATE users_stats SET pp_std = 1234 WHERE id = 999"))
    run(database.execute("DELETE FROM bancho_channels WHERE name = '#english'"))
    before = {t: run(database.fetch_value(f"SELECT COUNT(*) FROM `{t}`")) for t in schema.tables_for("kawata")}

    second = run(schema.init_db(database, "kawata"))
    assert second == ["seeded channel #english"]
    assert run(schema.init_db(database, "kawata")) == []

    assert run(database.fetch_value("SELECT value_int FROM bancho_settings WHERE name = 'bancho_maintenance'")) == 1
    assert run(database.fetch_value("SELECT description FROM bancho_channels WHERE name = '#osu'")) == "ours"
    bot = run(database.fetch_one("SELECT username, privileges FROM users WHERE id = 999"))
    assert bot == {"username": "Bot", "privileges": 3}
    assert run(database.fetch_value("SELECT pp_std FROM users_stats WHERE id = 999")) == 1234
    after = {t: run(database.fetch_value(f"SELECT COUNT(*) FROM `{t}`")) for t in schema.tables_for("kawata")}
    before["bancho_channels"] += 1
    assert after == before
    assert run(database.fetch_value("SELECT COUNT(*) FROM bancho_settings")) == 8


def test_init_db_leaves_foreign_tables_alone(make_database):
    """A production table with another shape (D2-style main_menu_icons, a users_stats_relax
    without country, a bancho_channels without temp/hidden) is kept and still seeded."""
    database = make_database()
    run(database.execute("CREATE TABLE main_menu_icons (file_id INT AUTO_INCREMENT PRIMARY KEY, url VARCHAR(128) NOT NULL, is_current TINYINT(1) NOT NULL)"))
    run(database.execute("CREATE TABLE bancho_channels (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(32) NOT NULL, description VARCHAR(127) NOT NULL, public_read TINYINT NOT NULL, public_write TINYINT NOT NULL, status TINYINT NOT NULL)"))
    run(database.execute("CREATE TABLE users_stats_relax (id INT PRIMARY KEY, username VARCHAR(30) NOT NULL, pp_std INT NOT NULL DEFAULT 0, legacy INT NOT NULL)"))
    run(database.execute("INSERT INTO bancho_channels (name, description, public_read, public_write, status) VALUES ('#osu', 'mine', 1, 0, 1)"))
    lines = run(schema.init_db(database, "kawata"))
    assert "created table main_menu_icons" not in lines
    assert "created table bancho_channels" not in lines
    assert "seeded channel #osu" not in lines and "seeded channel #lobby" in lines
    assert not [line for line in lines if line.startswith("WARNING")]
    cols = {r["c"] for r in run(database.fetch_all("SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'main_menu_icons'"))}
    assert cols == {"file_id", "url", "is_current"}
    assert run(database.fetch_one("SELECT description, public_write FROM bancho_channels WHERE name = '#osu'")) == {"description": "mine", "public_write": 0}
    assert run(database.fetch_one("SELECT username, legacy FROM users_stats_relax WHERE id = 999")) == {"username": "FokaBot", "legacy": 0}

    user_id = run(schema.add_user(database, "kawata", "Relax Guy", "pw"))
    assert run(database.fetch_value("SELECT username FROM users_stats_relax WHERE id = %s", (user_id,))) == "Relax Guy"


def test_init_db_custom_bot_id(make_database):
    database = make_database()
    lines = run(schema.init_db(database, "ripple", bot_id=555))
    assert "seeded bot user 555 (FokaBot)" in lines
    assert run(database.fetch_value("SELECT COUNT(*) FROM users")) == 1
    assert run(database.fetch_value("SELECT username FROM users_stats_relax WHERE id = 555")) == "FokaBot"
    # another bot id whose name is already taken: reported, nothing inserted
    again = run(schema.init_db(database, "ripple", bot_id=777))
    assert len(again) == 1 and again[0].startswith("WARNING: bot user 777 not seeded")
    assert run(database.fetch_value("SELECT COUNT(*) FROM users")) == 1
    assert run(schema.add_user(database, "ripple", "first", "pw")) == 1000


def test_init_db_rejects_unknown_flavour(make_database):
    database = make_database()
    with pytest.raises(ValueError):
        run(schema.init_db(database, "bancho.py"))


# ------------------------------------------------------------------------------ adduser


def test_safe_username_and_hash():
    assert schema.safe_username("  Some Body ") == "some_body"
    assert schema.safe_username("ABC_d") == "abc_d"
    md5 = hashlib.md5(b"password").hexdigest()
    stored = schema.hash_password_md5(md5)
    assert stored.startswith("$2a$10$") and len(stored) == 60
    assert bcrypt.checkpw(md5.encode(), stored.encode())
    assert not bcrypt.checkpw(hashlib.md5(b"Password").hexdigest().encode(), stored.encode())
    assert schema.hash_password_md5(md5.upper()) != stored  # new salt ...
    assert bcrypt.checkpw(md5.encode(), schema.hash_password_md5(md5.upper()).encode())  # ... same secret
    with pytest.raises(ValueError):
        schema.hash_password_md5("password")


@pytest.mark.parametrize("flavour", schema.FLAVOURS)
def test_add_user_writes_ripple_compatible_rows(make_database, flavour):
    database = make_database()
    run(schema.init_db(database, flavour))
    before = int(time.time())
    user_id = run(schema.add_user(database, flavour, "  Cool Player ", "correct horse", privileges=7))
    assert user_id == 1000
    row = run(database.fetch_one("SELECT * FROM users WHERE id = %s", (user_id,)))
    assert row["username"] == "Cool Player"
    assert row["username_safe"] == "cool_player"
    assert row["salt"] == ""
    assert row["password_version"] == 2
    assert row["privileges"] == 7
    assert row["email"] == ""
    assert before - 1 <= row["register_datetime"] <= int(time.time()) + 1
    assert row["password_md5"].startswith(("$2a$10$", "$2b$10$"))
    md5 = hashlib.md5(b"correct horse").hexdigest()
    assert bcrypt.checkpw(md5.encode(), row["password_md5"].encode())
    assert not bcrypt.checkpw(hashlib.md5(b"wrong").hexdigest().encode(), row["password_md5"].encode())

    for table in schema.stats_tables(flavour):
        stats = run(database.fetch_one(f"SELECT username, country, pp_std, playcount_std FROM `{table}` WHERE id = %s", (user_id,)))
        assert stats == {"username": "Cool Player", "country": "XX", "pp_std": 0, "playcount_std": 0}, table
    expected_stats = {"kawata": ["users_stats", "users_stats_relax", "ap_stats"],
                      "ripple": ["users_stats", "users_stats_relax"],
                      "realistikosu": ["users_stats", "rx_stats", "ap_stats"]}[flavour]
    assert schema.stats_tables(flavour) == expected_stats

    second = run(schema.add_user(database, flavour, "other", "pw"))
    assert second == 1001
    assert run(database.fetch_value("SELECT privileges FROM users WHERE id = %s", (second,))) == 3


@pytest.mark.parametrize(
    "username,password",
    [
        ("", "pw"),
        ("   ", "pw"),
        ("x" * 31, "pw"),
        ("space and_underscore", "pw"),
        ("nopassword", ""),
        ("tab\tname", "pw"),
    ],
)
def test_add_user_rejects_bad_input(make_database, username, password):
    database = make_database()
    run(schema.init_db(database, "kawata"))
    with pytest.raises(schema.UserError):
        run(schema.add_user(database, "kawata", username, password))
    assert run(database.fetch_value("SELECT COUNT(*) FROM users")) == 1  # only the bot


def test_add_user_rejects_duplicate_safe_name(make_database):
    database = make_database()
    run(schema.init_db(database, "ripple"))
    assert run(schema.add_user(database, "ripple", "x" * 30, "pw")) == 1000  # 30 characters is fine
    run(schema.add_user(database, "ripple", "Dupe Name", "pw"))
    for name in ("dupe_name", "DUPE NAME", " Dupe Name", "fokabot"):
        with pytest.raises(schema.UserError):
            run(schema.add_user(database, "ripple", name, "pw"))
    assert run(database.fetch_value("SELECT COUNT(*) FROM users")) == 3
    assert run(database.fetch_value("SELECT COUNT(*) FROM users_stats")) == 3
    with pytest.raises(schema.UserError):
        run(schema.add_user(database, "ripple", "negative", "pw", privileges=-1))


# ------------------------------------------------------------------------------ CLI


def _cli(args, database_name, flavour="kawata"):
    env = dict(
        os.environ,
        PEP_DB_HOST=BASE_CFG.host,
        PEP_DB_PORT=str(BASE_CFG.port),
        PEP_DB_USERNAME=BASE_CFG.username,
        PEP_DB_PASSWORD=BASE_CFG.password,
        PEP_DB_DATABASE=database_name,
        PEP_STACK_FLAVOUR=flavour,
    )
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "pep.py"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_init_db_and_adduser(make_database):
    database = make_database()
    name = database.cfg.database
    # a database that does not exist yet is created by init-db
    fresh = f"pep_test_{secrets.token_hex(6)}"
    try:
        first = _cli(["init-db"], fresh, "realistikosu")
        assert first.returncode == 0, first.stderr
        assert "created table users" in first.stdout
        assert "seeded channel #osu" in first.stdout
        assert first.stdout.rstrip().endswith("init-db: done")
        again = _cli(["init-db"], fresh, "realistikosu")
        assert again.returncode == 0 and again.stdout.strip() == "init-db: done"
    finally:
        conn = raw_connect()
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{fresh}`")
        finally:
            conn.close()

    assert _cli(["init-db"], name).returncode == 0
    added = _cli(["adduser", "cli user", "s3cret", "--privileges", "3"], name)
    assert added.returncode == 0, added.stderr
    user_id = int(added.stdout.strip())
    assert user_id >= 1000
    row = run(database.fetch_one("SELECT username, username_safe, password_md5, privileges FROM users WHERE id = %s", (user_id,)))
    assert row["username"] == "cli user" and row["username_safe"] == "cli_user" and row["privileges"] == 3
    assert bcrypt.checkpw(hashlib.md5(b"s3cret").hexdigest().encode(), row["password_md5"].encode())

    dup = _cli(["adduser", "CLI_user", "other"], name)
    assert dup.returncode == 1
    assert "taken" in dup.stderr
    assert dup.stdout.strip() == ""


# ------------------------------------------------------------------------------ login records
@pytest.mark.parametrize("flavour", schema.FLAVOURS)
def test_login_records_reads_everything_a_session_needs_in_few_statements(make_database, flavour):
    """common.ripple.Repository.login_records against real MySQL and Redis: stats, rank,
    country, friends, !block list and waiting offline messages, also when the tables added by
    later versions (user_blocks, offline_messages) are missing."""
    from common import ripple
    from common.redis import Redis

    database = make_database()
    run(schema.init_db(database, flavour))
    me = run(schema.add_user(database, flavour, "Reader", "pw"))
    friend = run(schema.add_user(database, flavour, "Friend", "pw"))
    other = run(schema.add_user(database, flavour, "Other", "pw"))
    prefix = f"pep_test_{secrets.token_hex(6)}:"
    redis_cfg = dataclasses.replace(config_module.load(None).redis, key_prefix=prefix)

    async def scenario() -> list[tuple]:
        redis = Redis(redis_cfg)
        repo = ripple.Repository(database, redis, flavour)
        try:
            await database.execute("UPDATE users_stats SET country = 'de', pp_std = 321, playcount_std = 7 "
                                   "WHERE id = %s", (me,))
            await database.execute("UPDATE users SET country = 'de' WHERE id = %s", (me,)) \
                if flavour == "realistikosu" else None
            await redis.client.zadd(redis.key("ripple:leaderboard:std"), {str(other): 900, str(me): 321})
            row = await repo.user_by_id(me)
            out = [await repo.login_records(me, row, "10.1.2.3", ("a" * 32, "b" * 32, "c" * 32), "b20250306")]
            for a, b in ((me, friend), (me, other), (friend, me)):
                await database.execute("INSERT INTO users_relationships (user1, user2) VALUES (%s, %s)", (a, b))
            await database.execute("INSERT INTO user_blocks (user_id, blocked_id) VALUES (%s, %s)", (me, other))
            await database.execute("INSERT INTO user_blocks (user_id, blocked_id) VALUES (%s, %s)", (friend, me))
            out.append(await repo.login_records(me, row, "10.1.2.3", None, "b20250306"))
            await database.execute("INSERT INTO offline_messages (sender_id, recipient_id, content, sent_at) "
                                   "VALUES (%s, %s, 'hi', 1)", (friend, me))
            out.append(await repo.login_records(me, row, "", None, "b20250306"))
            out.append(await repo.login_records(other, await repo.user_by_id(other), "", None, "b20250306"))
            await database.execute("DROP TABLE user_blocks")
            await database.execute("DROP TABLE offline_messages")
            # the first login after that finds a table missing: its batch is rolled back and run
            # again without the one-statement relations (the address is counted once)
            out.append(await repo.login_records(me, row, "10.1.2.3", None, "b20250306"))
            ips = await database.fetch_value("SELECT occurencies FROM ip_user WHERE userid = %s AND ip = '10.1.2.3'", (me,))
            out.append((ips,))
            # the machine's row: inserted by the first login, bumped by the next, activated later
            hashes = ("a" * 32, "b" * 32, "c" * 32)
            await repo.login_records(me, row, "", hashes, "b20250306")
            await repo.log_hardware(me, *hashes, activated=True)
            await repo.login_records(me, row, "", hashes, "b20250306")
            await repo.login_records(me, row, "", ("a" * 32, "b" * 32, "d" * 32), "b20250306")
            out.append(tuple(await database.fetch_all(
                "SELECT disk_id, occurencies, activated FROM hw_user WHERE userid = %s ORDER BY disk_id", (me,))))
            return out
        finally:
            keys = await redis.client.keys(prefix + "*")
            if keys:
                await redis.client.delete(*keys)
            await redis.close()

    first, friends, offline, others, old_schema, (ip_count,), machines = run(scenario())
    assert [(m["disk_id"], m["occurencies"], m["activated"]) for m in machines] == \
        [("c" * 32, 4, 1), ("d" * 32, 1, 0)]
    stats, country, friend_ids, blocked, waiting = first
    assert (stats.pp, stats.playcount, stats.rank) == (321, 7, 2)
    assert country == "DE" and friend_ids == [] and blocked == [] and waiting is False
    assert sorted(friends[2]) == sorted([friend, other]) and friends[3] == [other] and friends[4] is False
    assert offline[4] is True and sorted(offline[2]) == sorted([friend, other])
    # another user's rows are not mixed in: Other has no friends, blocks nobody, nothing waits
    assert others[1] == "XX" and others[2:] == ([], [], False) and others[0].rank == 1
    # without user_blocks and offline_messages: friends still read, nobody blocked, nothing waits
    assert old_schema[1] == "DE" and sorted(old_schema[2]) == sorted([friend, other])
    assert old_schema[3:] == ([], False)
    assert ip_count == 3  # the writes of the login still happen, once each


def test_concurrent_first_logins_log_their_hardware_without_deadlocks(make_database):
    """Repository.log_hardware (the login's hw_user batch) from many logins at once: new rows of
    different users in the same index gap, and repeated logins of the same machine, on eight
    connections. Every call succeeds (no deadlock, MySQL error 1213: docs/decisions.md) and every
    machine is counted once per login, in one row."""
    from common import ripple

    database = make_database(workers=8)
    run(schema.init_db(database, "ripple"))
    repo = ripple.Repository(database, None, "ripple")
    machines = [(5000 + i % 40, "a" * 32, f"{i % 40:032d}", "c" * 32) for i in range(160)]

    async def storm() -> list:
        return await asyncio.gather(*(repo.log_hardware(*m, activated=False) for m in machines),
                                    return_exceptions=True)

    failures = [r for r in run(storm()) if r is not None]
    assert failures == []
    rows = run(database.fetch_all("SELECT userid, unique_id, occurencies FROM hw_user WHERE userid >= 5000 "
                                  "ORDER BY userid"))
    assert [(r["userid"], r["unique_id"], r["occurencies"]) for r in rows] == \
        [(5000 + i, f"{i:032d}", 4) for i in range(40)]


def test_login_records_on_a_missing_log_table_fails_without_giving_up_the_one_statement_relations(make_database):
    """Only a missing user_blocks or offline_messages table switches the relations to one
    statement per table; any other missing table is an error of the login (and rolled back)."""
    from common import ripple
    from common.redis import Redis

    database = make_database()
    run(schema.init_db(database, "kawata"))
    me = run(schema.add_user(database, "kawata", "Logger", "pw"))
    run(database.execute("DROP TABLE ip_user"))
    redis_cfg = dataclasses.replace(config_module.load(None).redis, key_prefix=f"pep_test_{secrets.token_hex(6)}:")

    async def scenario():
        redis = Redis(redis_cfg)
        repo = ripple.Repository(database, redis, "kawata")
        try:
            row = await repo.user_by_id(me)
            with pytest.raises(db_module.DatabaseError) as info:
                await repo.login_records(me, row, "10.9.8.7", ("a" * 32, "b" * 32, "c" * 32), "b20250306")
            return info.value.code, repo._relations_in_one
        finally:
            await redis.close()

    code, in_one = run(scenario())
    assert code == 1146 and in_one is True
    assert run(database.fetch_value("SELECT COUNT(*) FROM hw_user WHERE userid = %s", (me,))) == 0  # rolled back
