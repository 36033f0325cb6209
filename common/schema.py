"""Database schema: ``init-db`` (create what is missing, seed what is missing) and ``adduser``.

:func:`init_db` creates the *minimum* schema the realtime server needs (docs/schema.md §5), with
``CREATE TABLE IF NOT EXISTS`` only, and inserts seed rows only when no row with the same key
exists. It never drops, alters, updates or deletes anything, so it is safe to run against a
production Ripple / Kawata / RealistikOsu database: a table that already exists is left as it
is, whatever its shape, and rows are inserted with only the columns that the existing table has.

It is not a full website or score-server schema: a complete stack should import its own dump
(hanayo / USSR / LETS) first and then run ``init-db`` to add whatever the realtime server still
misses.

:func:`add_user` creates an account the way the Ripple website does (bcrypt of the MD5 hex of
the password, ``password_version`` 2, one row in every statistics table of the flavour).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import secrets
import time
from typing import Any

import bcrypt

from common.db import Database, DatabaseError
from common.ripple import safe_username  # noqa: F401  (re-exported: adduser's name rule)
from constants import flavours as flavour_table

log = logging.getLogger("pep.schema")

FLAVOURS = tuple(flavour_table.FLAVOURS)  # kawata, ripple, realistikosu
MODES = ("std", "taiko", "ctb", "mania")
BCRYPT_COST = 10
MAX_USERNAME_LENGTH = 30
BOT_PRIVILEGES = {"kawata": 978427, "ripple": 978427, "realistikosu": 942669823}
DONOR_FOREVER = 2147483647

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"


class UserError(ValueError):
    """Bad input for :func:`add_user`: empty or too long username, a username with both spaces
    and underscores, a username whose safe form is taken, an empty password, negative
    privileges. The message is meant for the operator."""


# ---------------------------------------------------------------------------------- tables


def _stats_table(name: str) -> str:
    cols = [
        "`id` INT NOT NULL",
        "`username` VARCHAR(30) NOT NULL DEFAULT ''",
    ]
    for m in MODES:
        cols += [
            f"`ranked_score_{m}` BIGINT DEFAULT 0",
            f"`total_score_{m}` BIGINT DEFAULT 0",
            f"`playcount_{m}` INT NOT NULL DEFAULT 0",
            f"`avg_accuracy_{m}` FLOAT(15,12) NOT NULL DEFAULT 0",
            f"`pp_{m}` INT NOT NULL DEFAULT 0",
        ]
    cols += ["`country` CHAR(2) NOT NULL DEFAULT 'XX'", "PRIMARY KEY (`id`)"]
    return f"CREATE TABLE IF NOT EXISTS `{name}` (\n  " + ",\n  ".join(cols) + f"\n) {_TABLE_OPTIONS}"


def _scores_table(name: str, is_relax_column: bool, auto_increment: int | None = None) -> str:
    cols = [
        "`id` INT NOT NULL AUTO_INCREMENT",
        "`beatmap_md5` VARCHAR(32) NOT NULL DEFAULT ''",
        "`userid` INT NOT NULL",
        "`score` BIGINT NOT NULL DEFAULT 0",
        "`max_combo` INT NOT NULL DEFAULT 0",
        "`full_combo` TINYINT(1) NOT NULL DEFAULT 0",
        "`mods` INT NOT NULL DEFAULT 0",
        "`300_count` INT NOT NULL DEFAULT 0",
        "`100_count` INT NOT NULL DEFAULT 0",
        "`50_count` INT NOT NULL DEFAULT 0",
        "`katus_count` INT NOT NULL DEFAULT 0",
        "`gekis_count` INT NOT NULL DEFAULT 0",
        "`misses_count` INT NOT NULL DEFAULT 0",
        "`time` VARCHAR(18) NOT NULL DEFAULT ''",
        "`play_mode` TINYINT NOT NULL DEFAULT 0",
        "`completed` TINYINT NOT NULL DEFAULT 0",
        "`accuracy` FLOAT(15,12) NOT NULL DEFAULT 0",
        "`pp` DOUBLE NOT NULL DEFAULT 0",
    ]
    if is_relax_column:
        cols.append("`is_relax` INT NOT NULL DEFAULT 0")
    cols += ["PRIMARY KEY (`id`)", "KEY `userid` (`userid`)", "KEY `beatmap_md5` (`beatmap_md5`)"]
    opts = _TABLE_OPTIONS + (f" AUTO_INCREMENT={auto_increment}" if auto_increment else "")
    return f"CREATE TABLE IF NOT EXISTS `{name}` (\n  " + ",\n  ".join(cols) + f"\n) {opts}"


_DDL: dict[str, str] = {
    "users": f"""CREATE TABLE IF NOT EXISTS `users` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `username` VARCHAR(30) NOT NULL,
  `username_safe` VARCHAR(30) NOT NULL,
  `password_md5` VARCHAR(127) NOT NULL,
  `salt` VARCHAR(32) NOT NULL DEFAULT '',
  `password_version` TINYINT NOT NULL DEFAULT 2,
  `privileges` BIGINT NOT NULL DEFAULT 0,
  `silence_end` INT NOT NULL DEFAULT 0,
  `silence_reason` VARCHAR(127) NOT NULL DEFAULT '',
  `donor_expire` INT NOT NULL DEFAULT 0,
  `ban_datetime` VARCHAR(30) NOT NULL DEFAULT '0',
  `notes` TEXT NULL,
  `latest_activity` INT NOT NULL DEFAULT 0,
  `email` VARCHAR(254) NOT NULL DEFAULT '',
  `register_datetime` INT NOT NULL DEFAULT 0,
  `osuver` VARCHAR(256) NULL,
  `bypass_hwid` TINYINT(1) NOT NULL DEFAULT 0,
  `country` CHAR(2) NOT NULL DEFAULT 'XX',
  `frozen` INT NOT NULL DEFAULT 0,
  `freezedate` INT NOT NULL DEFAULT 0,
  `firstloginafterfrozen` INT NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `username_safe` (`username_safe`)
) {_TABLE_OPTIONS} AUTO_INCREMENT=1000""",
    "users_stats": _stats_table("users_stats"),
    "users_stats_relax": _stats_table("users_stats_relax"),
    "rx_stats": _stats_table("rx_stats"),
    "ap_stats": _stats_table("ap_stats"),
    "users_relationships": f"""CREATE TABLE IF NOT EXISTS `users_relationships` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `user1` INT NOT NULL,
  `user2` INT NOT NULL,
  PRIMARY KEY (`id`),
  KEY `user1` (`user1`)
) {_TABLE_OPTIONS}""",
    "privileges_groups": f"""CREATE TABLE IF NOT EXISTS `privileges_groups` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(32) NOT NULL,
  `privileges` BIGINT NOT NULL,
  `color` VARCHAR(32) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`)
) {_TABLE_OPTIONS}""",
    "hw_user": f"""CREATE TABLE IF NOT EXISTS `hw_user` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `userid` INT NOT NULL,
  `mac` VARCHAR(32) NOT NULL DEFAULT '',
  `unique_id` VARCHAR(32) NOT NULL DEFAULT '',
  `disk_id` VARCHAR(32) NOT NULL DEFAULT '',
  `occurencies` INT NOT NULL DEFAULT 0,
  `activated` TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `hashes` (`userid`, `mac`, `unique_id`, `disk_id`),
  KEY `mac` (`mac`),
  KEY `unique_id` (`unique_id`)
) {_TABLE_OPTIONS}""",
    "ip_user": f"""CREATE TABLE IF NOT EXISTS `ip_user` (
  `userid` INT NOT NULL,
  `ip` TEXT NOT NULL,
  `occurencies` INT NOT NULL DEFAULT 0,
  PRIMARY KEY (`userid`)
) {_TABLE_OPTIONS}""",
    "2fa_totp": f"""CREATE TABLE IF NOT EXISTS `2fa_totp` (
  `userid` INT NOT NULL,
  `enabled` TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`userid`)
) {_TABLE_OPTIONS}""",
    "bancho_settings": f"""CREATE TABLE IF NOT EXISTS `bancho_settings` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(32) NOT NULL,
  `value_int` INT NOT NULL DEFAULT 0,
  `value_string` VARCHAR(512) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  KEY `name` (`name`)
) {_TABLE_OPTIONS}""",
    "bancho_channels": f"""CREATE TABLE IF NOT EXISTS `bancho_channels` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(32) NOT NULL,
  `description` VARCHAR(127) NOT NULL DEFAULT '',
  `public_read` TINYINT NOT NULL DEFAULT 1,
  `public_write` TINYINT NOT NULL DEFAULT 1,
  `status` TINYINT NOT NULL DEFAULT 1,
  `temp` TINYINT(1) NOT NULL DEFAULT 0,
  `hidden` TINYINT(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) {_TABLE_OPTIONS}""",
    "main_menu_icons": f"""CREATE TABLE IF NOT EXISTS `main_menu_icons` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `is_current` INT NOT NULL DEFAULT 0,
  `file_id` VARCHAR(128) NOT NULL DEFAULT '',
  `name` VARCHAR(256) NOT NULL DEFAULT '',
  `url` TEXT NULL,
  PRIMARY KEY (`id`)
) {_TABLE_OPTIONS}""",
    "reports": f"""CREATE TABLE IF NOT EXISTS `reports` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `from_uid` INT NOT NULL,
  `to_uid` INT NOT NULL,
  `reason` TEXT NULL,
  `chatlog` TEXT NULL,
  `time` INT NOT NULL DEFAULT 0,
  `assigned` INT NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) {_TABLE_OPTIONS}""",
    "rap_logs": f"""CREATE TABLE IF NOT EXISTS `rap_logs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `userid` INT NOT NULL,
  `text` TEXT NULL,
  `datetime` INT NOT NULL DEFAULT 0,
  `through` TEXT NULL,
  PRIMARY KEY (`id`)
) {_TABLE_OPTIONS}""",
    "beatmaps": f"""CREATE TABLE IF NOT EXISTS `beatmaps` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `beatmap_id` INT NOT NULL DEFAULT 0,
  `beatmapset_id` INT NOT NULL DEFAULT 0,
  `beatmap_md5` VARCHAR(32) NOT NULL DEFAULT '',
  `song_name` TEXT NULL,
  `max_combo` INT NOT NULL DEFAULT 0,
  `difficulty_std` FLOAT NOT NULL DEFAULT 0,
  `difficulty_taiko` FLOAT NOT NULL DEFAULT 0,
  `difficulty_ctb` FLOAT NOT NULL DEFAULT 0,
  `difficulty_mania` FLOAT NOT NULL DEFAULT 0,
  `ranked` TINYINT NOT NULL DEFAULT 0,
  `ranked_status_freezed` TINYINT(1) NOT NULL DEFAULT 0,
  `rankedby` VARCHAR(32) NOT NULL DEFAULT '',
  `mode` INT NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `beatmap_md5` (`beatmap_md5`),
  KEY `beatmap_id` (`beatmap_id`),
  KEY `beatmapset_id` (`beatmapset_id`)
) {_TABLE_OPTIONS}""",
    "scores": _scores_table("scores", is_relax_column=True),
    "scores_relax": _scores_table("scores_relax", is_relax_column=False, auto_increment=1073741823),
    "scores_ap": _scores_table("scores_ap", is_relax_column=False, auto_increment=2000000000),
    "irc_tokens": f"""CREATE TABLE IF NOT EXISTS `irc_tokens` (
  `userid` INT NOT NULL DEFAULT 0,
  `token` VARCHAR(32) NOT NULL DEFAULT '',
  UNIQUE KEY `userid` (`userid`)
) {_TABLE_OPTIONS}""",
    "ban_logs": f"""CREATE TABLE IF NOT EXISTS `ban_logs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `from_id` INT NOT NULL,
  `to_id` INT NOT NULL,
  `ts` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `summary` VARCHAR(256) NOT NULL DEFAULT '',
  `detail` VARCHAR(2048) NOT NULL DEFAULT '',
  PRIMARY KEY (`id`),
  KEY `to_id` (`to_id`)
) {_TABLE_OPTIONS}""",
    "chat_logs": f"""CREATE TABLE IF NOT EXISTS `chat_logs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `user_id` INT NOT NULL,
  `target_id` INT NOT NULL,
  `content` VARCHAR(2048) NOT NULL DEFAULT '',
  `time` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `user_id` (`user_id`)
) {_TABLE_OPTIONS}""",
    "chat_chan_logs": f"""CREATE TABLE IF NOT EXISTS `chat_chan_logs` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `user_id` INT NOT NULL,
  `target_chan` VARCHAR(64) NOT NULL DEFAULT '',
  `content` VARCHAR(2048) NOT NULL DEFAULT '',
  `time` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `user_id` (`user_id`)
) {_TABLE_OPTIONS}""",
    "offline_messages": f"""CREATE TABLE IF NOT EXISTS `offline_messages` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `sender_id` INT NOT NULL,
  `recipient_id` INT NOT NULL,
  `content` VARCHAR(2048) NOT NULL DEFAULT '',
  `sent_at` INT NOT NULL,
  PRIMARY KEY (`id`),
  KEY `recipient_id` (`recipient_id`, `id`)
) {_TABLE_OPTIONS}""",
    "map_requests": f"""CREATE TABLE IF NOT EXISTS `map_requests` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `map_id` INT NOT NULL,
  `player_id` INT NOT NULL,
  `datetime` INT NOT NULL,
  `active` TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (`id`),
  KEY `active_map` (`active`, `map_id`),
  KEY `player_id` (`player_id`, `active`)
) {_TABLE_OPTIONS}""",
    "user_blocks": f"""CREATE TABLE IF NOT EXISTS `user_blocks` (
  `user_id` INT NOT NULL,
  `blocked_id` INT NOT NULL,
  PRIMARY KEY (`user_id`, `blocked_id`)
) {_TABLE_OPTIONS}""",
    # the clans of the Ripple-family websites (hanayo): user_clans.perms 1 member, 8 owner
    "clans": f"""CREATE TABLE IF NOT EXISTS `clans` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(64) NOT NULL DEFAULT '',
  `description` VARCHAR(512) NOT NULL DEFAULT '',
  `icon` VARCHAR(512) NOT NULL DEFAULT '',
  `tag` VARCHAR(8) NOT NULL DEFAULT '',
  `mlimit` INT NOT NULL DEFAULT 16,
  PRIMARY KEY (`id`)
) {_TABLE_OPTIONS}""",
    "user_clans": f"""CREATE TABLE IF NOT EXISTS `user_clans` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `user` INT NOT NULL,
  `clan` INT NOT NULL,
  `perms` INT NOT NULL DEFAULT 1,
  PRIMARY KEY (`id`),
  KEY `user` (`user`),
  KEY `clan` (`clan`)
) {_TABLE_OPTIONS}""",
    # bancho.py's mappools (!pool, !mp loadpool, !mp pick), in its shape
    "tourney_pools": f"""CREATE TABLE IF NOT EXISTS `tourney_pools` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(16) NOT NULL,
  `created_at` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `created_by` INT NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`)
) {_TABLE_OPTIONS}""",
    "tourney_pool_maps": f"""CREATE TABLE IF NOT EXISTS `tourney_pool_maps` (
  `map_id` INT NOT NULL,
  `pool_id` INT NOT NULL,
  `mods` INT NOT NULL,
  `slot` TINYINT NOT NULL,
  PRIMARY KEY (`map_id`, `pool_id`),
  KEY `pool_id` (`pool_id`)
) {_TABLE_OPTIONS}""",
    "user_statuses": f"""CREATE TABLE IF NOT EXISTS `user_statuses` (
  `id` INT NOT NULL AUTO_INCREMENT,
  `user_id` INT NOT NULL,
  `status` VARCHAR(256) NOT NULL DEFAULT '',
  `enabled` TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (`id`),
  UNIQUE KEY `user_id` (`user_id`)
) {_TABLE_OPTIONS}""",
}

_COMMON_TABLES = (
    "users",
    "users_stats",
    "users_relationships",
    "privileges_groups",
    "hw_user",
    "ip_user",
    "2fa_totp",
    "bancho_settings",
    "bancho_channels",
    "main_menu_icons",
    "reports",
    "rap_logs",
    "beatmaps",
    "scores",
    "irc_tokens",
    "offline_messages",
    "map_requests",
    "user_blocks",
    "clans",
    "user_clans",
    "tourney_pools",
    "tourney_pool_maps",
)
_FLAVOUR_TABLES = {
    # Kawata reads users_stats_relax for relax; its (unreachable) autopilot path reads ap_stats.
    "kawata": ("users_stats_relax", "ap_stats"),
    "ripple": ("users_stats_relax",),
    "realistikosu": (
        "rx_stats",
        "ap_stats",
        "scores_relax",
        "scores_ap",
        "ban_logs",
        "chat_logs",
        "chat_chan_logs",
        "user_statuses",
    ),
}

# bancho_settings rows of docs/schema.md §4.1, in the order every dump uses: (name, value_int, value_string)
SEED_SETTINGS: tuple[tuple[str, int, str], ...] = (
    ("bancho_maintenance", 0, ""),
    ("free_direct", 1, ""),
    ("menu_icon", 0, ""),
    ("login_messages", 0, ""),
    ("restricted_joke", 0, ""),
    ("login_notification", 0, "Welcome to the server!"),
    ("osu_versions", 0, ""),
    ("osu_md5s", 0, ""),
)

# bancho_channels: (name, description, public_read, public_write, hidden)
SEED_CHANNELS: tuple[tuple[str, str, int, int, int], ...] = (
    ("#osu", "Main osu! channel", 1, 1, 0),
    ("#announce", "Announcements", 1, 0, 0),
    ("#admin", "Staff channel", 0, 0, 1),
    ("#lobby", "Multiplayer lobby", 1, 1, 1),
    ("#english", "English community", 1, 1, 0),
    ("#ranked", "Newly ranked beatmaps", 1, 0, 0),
)

# privileges_groups (D2 values, without D2's trailing space in "Community Manager", plus the
# "Chat Mod" group Ripple's admin detection looks for and no dump seeds): (name, privileges)
SEED_GROUPS: tuple[tuple[str, int], ...] = (
    ("Banned", 0),
    ("Restricted", 2),
    ("Normal User", 3),
    ("Donor", 7),
    ("BAT", 267),
    ("Chat Mod", 2883911),
    ("Chat Moderators", 2883911),
    ("Community Manager", 978427),
    ("Developer", 1043995),
    ("God", 1048575),
    ("Pending", 1048576),
)


def _check_flavour(flavour: str) -> str:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}: expected one of {', '.join(FLAVOURS)}")
    return flavour


def tables_for(flavour: str) -> list[str]:
    """Names of the tables :func:`init_db` ensures for ``flavour`` (ValueError if unknown):
    the common ones, the flavour's extras, and every table of :func:`stats_tables`."""
    names = list(_COMMON_TABLES) + list(_FLAVOUR_TABLES[_check_flavour(flavour)])
    for table in stats_tables(flavour):
        if table not in names and table in _DDL:
            names.append(table)
    return names


def stats_tables(flavour: str) -> list[str]:
    """Statistics tables that need one row per user for ``flavour``: ``users_stats`` first,
    then ``users_stats_relax`` (+ ``ap_stats`` for kawata) or ``rx_stats`` + ``ap_stats``
    (realistikosu), as listed in :mod:`constants.flavours`. ValueError if the flavour is
    unknown."""
    return list(flavour_table.FLAVOURS[_check_flavour(flavour)].stats_tables)


def bot_name(flavour: str) -> str:
    """Name given to a newly seeded bot user: ``FokaBot`` (ripple, kawata) or ``RealistikBot``
    (realistikosu), from :mod:`constants.flavours`. An existing bot keeps its name."""
    return flavour_table.FLAVOURS[_check_flavour(flavour)].bot_name


def table_ddl(table: str) -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` statement :func:`init_db` uses for ``table``
    (KeyError if it is not one of ours). Useful for tests that build fixtures."""
    return _DDL[table]


# ---------------------------------------------------------------------------------- helpers


def hash_password_md5(md5hex: str) -> str:
    """bcrypt (cost 10, ``$2a$`` prefix, like the Ripple website) of the lower-case hex MD5 of a
    password, as stored in ``users.password_md5``. Raises ValueError unless ``md5hex`` is 32 hex
    digits (upper case is accepted and lowered, since clients send lower case)."""
    md5hex = md5hex.strip().lower()
    if len(md5hex) != 32 or any(c not in "0123456789abcdef" for c in md5hex):
        raise ValueError("expected the 32-character hex MD5 of the password")
    return bcrypt.hashpw(md5hex.encode("ascii"), bcrypt.gensalt(BCRYPT_COST, b"2a")).decode("ascii")


async def _hash_in_thread(md5hex: str) -> str:
    # bcrypt at cost 10 takes tens of milliseconds: keep it off the event loop.
    return await asyncio.get_running_loop().run_in_executor(None, hash_password_md5, md5hex)


async def _existing_tables(db: Database) -> set[str]:
    rows = await db.fetch_all(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
    )
    return {str(r["name"]).lower() for r in rows}


async def _columns(db: Database, table: str) -> dict[str, dict[str, Any]]:
    """Column info of an existing table (empty dict if the table does not exist)."""
    rows = await db.fetch_all(
        "SELECT COLUMN_NAME AS name, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS dflt, "
        "DATA_TYPE AS type, EXTRA AS extra FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
        (table,),
    )
    return {str(r["name"]).lower(): r for r in rows}


_NUMERIC_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "float", "double", "decimal", "bit", "year"}
_STRING_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"}
_DATE_TYPES = {"datetime", "timestamp", "date"}


def _insert_statement(table: str, columns: dict[str, dict[str, Any]], values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """Build an INSERT for an existing table of unknown shape: keep only the values whose column
    exists, and fill NOT NULL columns that have no default (production dumps have a few) with a
    neutral value so that strict mode accepts the row."""
    row = {k: v for k, v in values.items() if k.lower() in columns}
    for name, info in columns.items():
        if name in {k.lower() for k in row}:
            continue
        extra = str(info.get("extra") or "").lower()
        if info.get("nullable") != "NO" or info.get("dflt") is not None:
            continue
        if "auto_increment" in extra or "generated" in extra:
            continue
        kind = str(info.get("type") or "").lower()
        if kind in _NUMERIC_TYPES:
            row[name] = 0
        elif kind in _STRING_TYPES:
            row[name] = ""
        elif kind in _DATE_TYPES:
            row[name] = datetime.datetime.now().replace(microsecond=0)
    names = ", ".join(f"`{c}`" for c in row)
    marks = ", ".join(["%s"] * len(row))
    return f"INSERT INTO `{table}` ({names}) VALUES ({marks})", tuple(row.values())


# ---------------------------------------------------------------------------------- init-db


async def init_db(db: Database, flavour: str, bot_id: int = 999) -> list[str]:
    """Create the missing tables of ``flavour`` and seed the missing rows; idempotent.

    Tables (``CREATE TABLE IF NOT EXISTS``, shapes of docs/schema.md §5): see :func:`tables_for`.
    Seeds, each only when missing: the bot user ``bot_id`` (:func:`bot_name`, unusable random
    password, privileges 978427 or 942669823 for realistikosu, permanent donor) and its row in
    every table of :func:`stats_tables`; the eight ``bancho_settings`` rows of §4.1 (by name);
    the channels ``#osu #announce #admin #lobby #english #ranked`` (by name); the
    ``privileges_groups`` of docs/schema.md §5 (by name).

    Never drops, alters, updates or deletes: an existing table keeps its shape, an existing row
    keeps its values. A seed row that an existing, differently shaped table refuses is reported
    as a ``WARNING`` line instead of aborting the run.

    Returns one human-readable line per action ("created table users", "seeded channel #osu",
    ...); an up-to-date database gives an empty list. Raises ValueError for an unknown flavour
    and :class:`common.db.DatabaseError` when MySQL fails.
    """
    _check_flavour(flavour)
    lines: list[str] = []

    existing = await _existing_tables(db)
    for table in tables_for(flavour):
        if table.lower() in existing:
            continue
        await db.execute(_DDL[table])
        lines.append(f"created table {table}")
        log.debug("created table %s", table)

    async def seed(label: str, table: str, values: dict[str, Any]) -> None:
        cols = await _columns(db, table)
        sql, args = _insert_statement(table, cols, values)
        try:
            await db.execute(sql, args)
        except DatabaseError as exc:
            lines.append(f"WARNING: could not seed {label}: {exc}")
            log.warning("could not seed %s: %s", label, exc)
            return
        lines.append(f"seeded {label}")
        log.debug("seeded %s", label)

    # --- bot user
    name_of_bot = bot_name(flavour)
    bot = await db.fetch_one("SELECT id, username FROM users WHERE id = %s", (bot_id,))
    if bot is None:
        taken = await db.fetch_one(
            "SELECT id FROM users WHERE username_safe = %s", (safe_username(name_of_bot),)
        )
        if taken is not None:
            lines.append(
                f"WARNING: bot user {bot_id} not seeded: the name {name_of_bot} is taken by user {taken['id']}"
            )
        else:
            unusable = await _hash_in_thread(hashlib.md5(secrets.token_bytes(32)).hexdigest())
            await seed(
                f"bot user {bot_id} ({name_of_bot})",
                "users",
                {
                    "id": bot_id,
                    "username": name_of_bot,
                    "username_safe": safe_username(name_of_bot),
                    "password_md5": unusable,
                    "salt": "",
                    "password_version": 2,
                    "privileges": BOT_PRIVILEGES[flavour],
                    "donor_expire": DONOR_FOREVER,
                    "register_datetime": int(time.time()),
                    "email": "",
                    "notes": "",
                },
            )
        bot = await db.fetch_one("SELECT id, username FROM users WHERE id = %s", (bot_id,))
    if bot is not None:
        for table in stats_tables(flavour):
            if not await _columns(db, table):
                continue
            if await db.fetch_one(f"SELECT 1 AS x FROM `{table}` WHERE id = %s", (bot_id,)) is None:
                await seed(
                    f"{table} row for user {bot_id}",
                    table,
                    {"id": bot_id, "username": bot["username"], "country": "XX"},
                )

    # --- bancho_settings
    for name, value_int, value_string in SEED_SETTINGS:
        if await db.fetch_one("SELECT 1 AS x FROM bancho_settings WHERE name = %s", (name,)) is None:
            await seed(
                f"setting {name}",
                "bancho_settings",
                {"name": name, "value_int": value_int, "value_string": value_string},
            )

    # --- bancho_channels
    for name, description, public_read, public_write, hidden in SEED_CHANNELS:
        if await db.fetch_one("SELECT 1 AS x FROM bancho_channels WHERE name = %s", (name,)) is None:
            await seed(
                f"channel {name}",
                "bancho_channels",
                {
                    "name": name,
                    "description": description,
                    "public_read": public_read,
                    "public_write": public_write,
                    "status": 1,
                    "temp": 0,
                    "hidden": hidden,
                },
            )

    # --- privileges_groups
    for name, privileges in SEED_GROUPS:
        if await db.fetch_one("SELECT 1 AS x FROM privileges_groups WHERE name = %s", (name,)) is None:
            await seed(
                f"privileges group {name}",
                "privileges_groups",
                {"name": name, "privileges": privileges, "color": ""},
            )

    return lines


# ---------------------------------------------------------------------------------- adduser


def _validate(username: str, password: str, privileges: int) -> str:
    if not isinstance(username, str) or not isinstance(password, str):
        raise UserError("username and password must be strings")
    username = username.strip()
    if not username:
        raise UserError("the username is empty")
    if len(username) > MAX_USERNAME_LENGTH:
        raise UserError(f"the username is longer than {MAX_USERNAME_LENGTH} characters")
    if " " in username and "_" in username:
        raise UserError("a username may contain spaces or underscores, but not both")
    if not username.isprintable():
        raise UserError("the username contains control characters")
    if password == "":
        raise UserError("the password is empty")
    if not isinstance(privileges, int) or privileges < 0:
        raise UserError("privileges must be a non-negative integer")
    return username


async def add_user(db: Database, flavour: str, username: str, password: str, privileges: int = 3) -> int:
    """Create a user like the Ripple website does and return its id.

    ``users`` row: ``username`` (trimmed), ``username_safe`` = :func:`safe_username`,
    ``password_md5`` = :func:`hash_password_md5` of ``md5(password)``, ``salt`` '',
    ``password_version`` 2, ``privileges``, ``register_datetime`` now, ``email`` ''. Then one
    row (``id``, ``username``, ``country`` 'XX') in every table of :func:`stats_tables` that
    exists, in the same transaction; a stats row that already exists for that id is left alone.

    Raises :class:`UserError` for bad input or a taken safe name, ValueError for an unknown
    flavour and :class:`common.db.DatabaseError` when MySQL fails.
    """
    _check_flavour(flavour)
    username = _validate(username, password, privileges)
    safe = safe_username(username)
    if await db.fetch_one("SELECT id FROM users WHERE username_safe = %s", (safe,)) is not None:
        raise UserError(f"the username {username!r} is taken (safe name {safe!r})")

    password_hash = await _hash_in_thread(hashlib.md5(password.encode("utf-8")).hexdigest())
    user_cols = await _columns(db, "users")
    if not user_cols:
        raise DatabaseError("table users does not exist: run `python3 pep.py init-db` first", code=1146)
    user_sql, user_args = _insert_statement(
        "users",
        user_cols,
        {
            "username": username,
            "username_safe": safe,
            "password_md5": password_hash,
            "salt": "",
            "password_version": 2,
            "privileges": privileges,
            "register_datetime": int(time.time()),
            "email": "",
            "notes": "",
        },
    )
    stats: list[tuple[str, dict[str, dict[str, Any]]]] = []
    for table in stats_tables(flavour):
        cols = await _columns(db, table)
        if cols:
            stats.append((table, cols))
        else:
            log.warning("adduser: table %s does not exist; no %s row created (run init-db)", table, table)

    def work(cur: Any) -> int:
        import MySQLdb

        try:
            cur.execute(user_sql, user_args)
        except MySQLdb.IntegrityError as exc:
            if exc.args and exc.args[0] == 1062:
                raise UserError(f"the username {username!r} is taken (safe name {safe!r})") from None
            raise
        user_id = int(cur.lastrowid)
        for table, cols in stats:
            cur.execute(f"SELECT 1 AS x FROM `{table}` WHERE id = %s", (user_id,))
            if cur.fetchone():
                continue
            sql, args = _insert_statement(table, cols, {"id": user_id, "username": username, "country": "XX"})
            cur.execute(sql, args)
        return user_id

    user_id = await db.transaction(work)
    log.debug("created user %s (%s) with privileges %s", user_id, username, privileges)
    return user_id


async def new_irc_token(db: Database, username: str) -> str:
    """Give ``username`` (any case, spaces or underscores) a new IRC token as the website does:
    a random token whose MD5 replaces the user's row in ``irc_tokens`` (docs/irc.md); returns
    the token in clear (shown once). Raises :class:`UserError` for an unknown user and
    :class:`common.db.DatabaseError` when MySQL fails."""
    row = await db.fetch_one("SELECT id FROM users WHERE username_safe = %s", (safe_username(username),))
    if row is None:
        raise UserError(f"no user named {username!r}")
    token = secrets.token_hex(16)
    await db.execute("REPLACE INTO irc_tokens (userid, token) VALUES (%s, %s)",
                     (int(row["id"]), hashlib.md5(token.encode("ascii")).hexdigest()))
    return token
