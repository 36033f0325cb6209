"""The Ripple/Kawata/RealistikOsu queries behind one interface chosen by the flavour.

Every function is a coroutine that runs its SQL on the MySQL thread pool
(:class:`common.db.Database`); none may be awaited from the poll path. All values are passed as
parameters; the only identifiers formatted into SQL come from :mod:`constants.flavours` and
:data:`constants.game.MODE_SUFFIX`. Errors propagate as :class:`common.db.DatabaseError`.
Sources: docs/schema.md §1–4.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from typing import Any, Sequence

from common.db import Database, DatabaseError
from common.redis import Redis
from constants import game, privileges as privs
from constants.flavours import FLAVOURS, Flavour

_log = logging.getLogger("pep.ripple")


@dataclasses.dataclass
class Stats:
    """Stats of one user in one mode (docs/schema.md §2.5); accuracy is a 0..1 fraction."""

    ranked_score: int = 0
    accuracy: float = 0.0
    playcount: int = 0
    total_score: int = 0
    rank: int = 0
    pp: int = 0


@dataclasses.dataclass
class Settings:
    """``bancho_settings`` and the current main menu icon (docs/schema.md §4)."""

    maintenance: bool = False
    free_direct: bool = True
    login_notification: str = ""
    menu_icon: str = ""


#: users one player may block with ``!block`` (bancho.py)
MAX_BLOCKS = 100
#: MySQL's "no such table" error number
NO_SUCH_TABLE = 1146
DUPLICATE_KEY = 1062
#: ``user_clans.perms`` as the Ripple-family websites (hanayo) write it
CLAN_MEMBER = 1
CLAN_OWNER = 8


def _no_such_table(exc: BaseException) -> bool:
    """Whether a raw driver error (inside :meth:`common.db.Database.transaction`) is 1146."""
    return bool(exc.args) and exc.args[0] == NO_SUCH_TABLE


@dataclasses.dataclass(frozen=True)
class OfflineMessage:
    """A private message kept for a user who was offline (table ``offline_messages``,
    docs/integration.md "Offline messages"): ``sent_at`` in Unix seconds."""

    id: int
    sender_id: int
    sender_name: str
    content: str
    sent_at: int


class StoreResult(str, enum.Enum):
    """What :meth:`Repository.store_offline_message` did with a message."""

    STORED = "stored"
    UNKNOWN = "no such user"
    UNREACHABLE = "recipient banned or restricted"
    FULL = "recipient has too many stored messages"


@dataclasses.dataclass
class ChannelRow:
    """One ``bancho_channels`` row: name, topic, public read/write."""
    name: str
    description: str
    public_read: bool
    public_write: bool


def safe_username(name: str) -> str:
    """Ripple's safe name: lower case, trimmed, spaces as underscores (docs/schema.md §2.1)."""
    return name.strip().lower().replace(" ", "_")


class Repository:
    """Flavour-aware access to the stack's database and leaderboards."""

    def __init__(self, db: Database, redis: Redis, flavour: str) -> None:
        self.db = db
        self.redis = redis
        self.flavour: Flavour = FLAVOURS[flavour]
        self.admin_groups: list[int] = []  # ripple flavour: privileges of the admin groups
        # False once MySQL said a table of :attr:`_RELATIONS` is missing (a database init-db has
        # not updated yet): the login then reads the relations one table at a time
        self._relations_in_one = True

    # ------------------------------------------------------------------ users
    async def user_by_safe_name(self, safe_name: str) -> dict[str, Any] | None:
        """The whole ``users`` row (columns vary between dumps, so ``SELECT *``), or None."""
        return await self.db.fetch_one("SELECT * FROM users WHERE username_safe = %s LIMIT 1", (safe_name,))

    async def user_by_id(self, user_id: int) -> dict[str, Any] | None:
        """The whole ``users`` row of ``user_id``, or None."""
        return await self.db.fetch_one("SELECT * FROM users WHERE id = %s LIMIT 1", (user_id,))

    async def irc_token_user(self, token_md5: str) -> int | None:
        """The user id whose IRC token hashes to ``token_md5`` (``irc_tokens``, docs/irc.md), or None."""
        row = await self.db.fetch_one("SELECT userid FROM irc_tokens WHERE token = %s LIMIT 1", (token_md5,))
        return None if row is None else int(row["userid"])

    async def privileges_and_silences(self, user_ids: list[int], chunk: int = 1000) -> dict[int, tuple[int, int]]:
        """``{id: (users.privileges, users.silence_end)}`` of ``user_ids`` (unknown ids absent),
        one query per ``chunk`` ids (pub/sub catch-up after a reconnect, docs/security.md).
        Raises :class:`common.db.DatabaseError`."""
        out: dict[int, tuple[int, int]] = {}
        for start in range(0, len(user_ids), chunk):
            part = user_ids[start:start + chunk]
            marks = ", ".join(["%s"] * len(part))
            rows = await self.db.fetch_all(
                f"SELECT id, privileges, silence_end FROM users WHERE id IN ({marks})", tuple(part))
            for row in rows:
                out[int(row["id"])] = (int(row["privileges"] or 0), int(row["silence_end"] or 0))
        return out

    async def user_exists(self, user_id: int) -> bool:
        """Whether a ``users`` row with this id exists."""
        row = await self.db.fetch_one("SELECT 1 AS x FROM users WHERE id = %s LIMIT 1", (user_id,))
        return row is not None

    async def set_privileges(self, user_id: int, privileges: int) -> None:
        """Write ``users.privileges`` (the bitmask of docs/schema.md §2.3)."""
        await self.db.execute("UPDATE users SET privileges = %s WHERE id = %s", (privileges, user_id))

    async def append_notes(self, user_id: int, text: str) -> None:
        """Append a dated line to ``users.notes`` (CM notes)."""
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}"
        await self.db.execute(
            "UPDATE users SET notes = CONCAT(COALESCE(notes, ''), %s) WHERE id = %s", ("\n" + line, user_id)
        )

    async def set_silence(self, user_id: int, seconds: int, reason: str) -> int:
        """Silence for ``seconds`` from now (0 removes it); returns the absolute end (unix s)."""
        end = int(time.time()) + max(0, int(seconds))
        await self.db.execute(
            "UPDATE users SET silence_end = %s, silence_reason = %s WHERE id = %s", (end, reason[:127], user_id)
        )
        return end

    async def is_admin(self, privileges: int) -> bool:
        """Admin/GMT per flavour (docs/schema.md §2.3): group membership (ripple) or exact presets."""
        if self.flavour.admin_rule == "groups":
            return any(g and privileges & g == g for g in self.admin_groups)
        if self.flavour.name == "realistikosu":
            return privileges in privs.RO_ADMIN_VALUES
        return privileges in privs.KAWATA_ADMIN_VALUES

    def presence_rank(self, privileges: int, admin: bool, is_bot: bool) -> int:
        """Low 5 bits of the presence byte: the name colour (docs/schema.md §2.3)."""
        rank = privs.CLIENT_PLAYER
        if is_bot:
            return rank | (privs.CLIENT_BAT | privs.CLIENT_SUPPORTER if self.flavour.name == "ripple"
                           else privs.CLIENT_DEVELOPER)
        if self.flavour.name == "kawata":
            if privileges == privs.KAWATA_FULL_PERMS:
                rank |= privs.CLIENT_OWNER
            elif privileges in privs.KAWATA_DEVELOPER_VALUES:
                rank |= privs.CLIENT_DEVELOPER
            elif admin:
                rank |= privs.CLIENT_BAT | privs.CLIENT_SUPPORTER
        elif self.flavour.name == "realistikosu":
            if privileges == privs.RO_OWNER:
                rank |= privs.CLIENT_OWNER
            elif privileges in (privs.RO_DEVELOPER, privs.RO_ADMIN):
                rank |= privs.CLIENT_DEVELOPER
            elif privileges == privs.RO_MODERATOR:
                rank |= privs.CLIENT_BAT | privs.CLIENT_SUPPORTER
        elif admin:
            rank |= privs.CLIENT_DEVELOPER
        if privileges & privs.USER_DONOR:
            rank |= privs.CLIENT_SUPPORTER
        return rank

    # ------------------------------------------------------------------ stats
    def stats_source(self, mode: int, relax: bool, autopilot: bool) -> tuple[str, str]:
        """(table, leaderboard key) for a mode and relax/autopilot state; mania is always vanilla."""
        f = self.flavour
        m = game.MODE_SUFFIX[mode]
        if mode != game.MANIA:
            if relax and f.stats_relax and f.board_relax:
                return f.stats_relax, f.board_relax.format(m=m)
            if autopilot and f.stats_autopilot and f.board_autopilot:
                return f.stats_autopilot, f.board_autopilot.format(m=m)
        return f.stats_vanilla, f.board_vanilla.format(m=m)

    def _stats_query(self, user_id: int, mode: int, relax: bool, autopilot: bool,
                     extra: str = "") -> tuple[str, tuple, str]:
        """(sql, args, leaderboard key) of the stats row for a mode and relax/autopilot state;
        ``extra``: more columns of the same row (``", country"``)."""
        if not 0 <= mode <= 3:
            raise ValueError(f"mode {mode} out of range")
        table, board = self.stats_source(mode, relax, autopilot)
        m = game.MODE_SUFFIX[mode]
        sql = (f"SELECT ranked_score_{m} AS rs, total_score_{m} AS ts, playcount_{m} AS pc, "
               f"avg_accuracy_{m} AS acc, pp_{m} AS pp{extra} FROM {table} WHERE id = %s LIMIT 1")
        return sql, (user_id,), board

    async def _stats_from_row(self, row: dict[str, Any] | None, board: str, user_id: int) -> Stats:
        if row is None:
            return Stats()
        pp = int(row["pp"] or 0)
        rank = await self.redis.rank(board, user_id)
        return Stats(
            ranked_score=int(row["rs"] or 0),
            accuracy=float(row["acc"] or 0) / 100.0,
            playcount=int(row["pc"] or 0),
            total_score=int(row["ts"] or 0),
            rank=rank,
            pp=pp if 0 < pp <= 65535 else 0,
        )

    async def stats(self, user_id: int, mode: int, relax: bool = False, autopilot: bool = False) -> Stats:
        """Stats for the packet 11 (docs/schema.md §2.5): NULL is 0, accuracy /100, pp 0 outside
        1..65535, rank from the flavour's leaderboard (0 when absent). ValueError for a bad mode."""
        sql, args, board = self._stats_query(user_id, mode, relax, autopilot)
        return await self._stats_from_row(await self.db.fetch_one(sql, args), board, user_id)

    # friends, !block list and whether offline messages wait, in one statement (k = 0, 1, 2)
    _RELATIONS = ("SELECT 0 AS k, user2 AS v FROM users_relationships WHERE user1 = %s "
                  "UNION ALL (SELECT 1, blocked_id FROM user_blocks WHERE user_id = %s LIMIT %s) "
                  "UNION ALL (SELECT 2, 1 FROM offline_messages WHERE recipient_id = %s LIMIT 1)")

    async def login_records(self, user_id: int, user_row: dict[str, Any], ip: str,
                            hardware: tuple[str, str, str] | None, version: str
                            ) -> tuple[Stats, str, list[int], list[int], bool]:
        """Everything a successful login does in MySQL, in ONE transaction and ONE round trip
        (:meth:`common.db.Database.batch`; bench/README.md, "seventh pass"): the writes
        (docs/schema.md §2.6: the ``hw_user`` row when the client sent its hashes, ``ip_user``,
        ``users.osuver``), then what the session needs: (osu! standard vanilla stats, stored
        country, friend ids, ids the user blocked with ``!block``, whether ``offline_messages``
        holds any for the user). The last saves the login a trip to the pool when nothing waits
        (``chat.deliver_offline_messages`` takes them). The country comes with the stats row
        where both are in ``users_stats`` (Ripple, Kawata), and friends, blocks and offline
        messages are one ``UNION ALL``. A database without the ``user_blocks`` or
        ``offline_messages`` table (before ``init-db`` added them) gives no blocks and no
        messages: its first login finds the table missing, the batch is rolled back and run
        again with the relations read apart, as every later login does. Raises
        :class:`common.db.DatabaseError`."""
        table = self.stats_source(game.STD, False, False)[0]
        country_in_row = self.flavour.country_table == "users_stats" and table == "users_stats"
        sql, args, board = self._stats_query(user_id, game.STD, False, False, ", country" if country_in_row else "")
        country_query = not country_in_row and not self._country_from_row(user_row)
        statements: list[tuple[str, Sequence[Any]]] = []
        if hardware is not None:
            statements += self._log_hardware_batch(user_id, *hardware, activated=False)
        if ip:
            statements.append((self._LOG_IP, (user_id, ip)))
        if self.flavour.writes_osuver:
            statements.append(("UPDATE users SET osuver = %s WHERE id = %s", (version[:256], user_id)))
        reads = len(statements)
        statements.append((sql, args))
        if country_query:
            statements.append((self._COUNTRY, (user_id,)))
        if self._relations_in_one:
            statements.append((self._RELATIONS, (user_id, user_id, MAX_BLOCKS, user_id)))
        try:
            results = await self.db.batch(statements)
        except DatabaseError as exc:
            missing = str(exc)
            if (exc.code != NO_SUCH_TABLE or not self._relations_in_one
                    or not ("user_blocks" in missing or "offline_messages" in missing)):
                raise
            # a database init-db has not updated yet (no user_blocks or offline_messages): the
            # batch was rolled back; from now on the relations are read one table at a time
            self._relations_in_one = False
            return await self.login_records(user_id, user_row, ip, hardware, version)
        rows = results[reads:]
        row = rows[0][0] if rows[0] else None
        if country_in_row:
            country = self._country_of(row)
        elif country_query:
            country = self._country_of(rows[1][0] if rows[1] else None)
        else:
            country = self._country_from_row(user_row)
        if self._relations_in_one:
            friends, blocked, offline = self._relations_of(rows[-1])
        else:
            friends, blocked, offline = await self.db.transaction(lambda cur: self._relations_apart(cur, user_id))
        return await self._stats_from_row(row, board, user_id), country, friends, blocked, offline

    @staticmethod
    def _relations_of(rows: list[dict[str, Any]]) -> tuple[list[int], list[int], bool]:
        """(friend ids, ids blocked with ``!block``, whether offline messages wait) from the
        rows of :attr:`_RELATIONS`."""
        friends: list[int] = []
        blocked: list[int] = []
        offline = False
        for r in rows:
            kind = int(r["k"])
            if kind == 0:
                friends.append(int(r["v"]))
            elif kind == 1:
                blocked.append(int(r["v"]))
            else:
                offline = True
        return friends, blocked, offline

    def _relations_apart(self, cur: Any, user_id: int) -> tuple[list[int], list[int], bool]:
        """:meth:`_relations_of` one table at a time, for a database whose ``user_blocks`` or
        ``offline_messages`` table is missing (each missing table reads as empty)."""
        cur.execute("SELECT user2 FROM users_relationships WHERE user1 = %s", (user_id,))
        friends = [int(r["user2"]) for r in cur.fetchall()]
        return friends, self._blocked(cur, user_id), self._offline_waiting(cur, user_id)

    @staticmethod
    def _blocked(cur: Any, user_id: int) -> list[int]:
        try:
            cur.execute("SELECT blocked_id FROM user_blocks WHERE user_id = %s LIMIT %s", (user_id, MAX_BLOCKS))
        except Exception as exc:  # a database init-db has not updated yet: nobody blocked
            if not _no_such_table(exc):
                raise
            return []
        return [int(r["blocked_id"]) for r in cur.fetchall()]

    @staticmethod
    def _offline_waiting(cur: Any, user_id: int) -> bool:
        try:
            cur.execute("SELECT 1 AS x FROM offline_messages WHERE recipient_id = %s LIMIT 1", (user_id,))
        except Exception as exc:  # a database init-db has not updated yet: nothing kept
            if not _no_such_table(exc):
                raise
            return False
        return cur.fetchone() is not None

    _COUNTRY = "SELECT country FROM users_stats WHERE id = %s LIMIT 1"

    async def country(self, user_id: int, user_row: dict[str, Any] | None = None) -> str:
        """The stored two-letter country, upper case ('XX' when unknown; docs/schema.md §3.4)."""
        stored = self._country_from_row(user_row)
        if stored:
            return stored
        return self._country_of(await self.db.fetch_one(self._COUNTRY, (user_id,)))

    def _country_from_row(self, user_row: dict[str, Any] | None) -> str:
        """``users.country`` (upper case) on RealistikOsu when set, else '' (read
        ``users_stats.country`` with :attr:`_COUNTRY`)."""
        if self.flavour.country_table == "users" and user_row is not None and user_row.get("country"):
            return str(user_row["country"]).upper()
        return ""

    @staticmethod
    def _country_of(row: dict[str, Any] | None) -> str:
        """The country of a :attr:`_COUNTRY` row, upper case; 'XX' for none."""
        return str(row["country"]).upper() if row and row.get("country") else "XX"

    # ------------------------------------------------------------------ friends
    async def add_friend(self, user_id: int, friend_id: int) -> bool:
        """Insert user → friend unless it is self, unknown or already there; returns whether added."""
        if user_id == friend_id or not await self.user_exists(friend_id):
            return False
        exists = await self.db.fetch_one(
            "SELECT 1 AS x FROM users_relationships WHERE user1 = %s AND user2 = %s LIMIT 1", (user_id, friend_id)
        )
        if exists is not None:
            return False
        await self.db.execute("INSERT INTO users_relationships (user1, user2) VALUES (%s, %s)", (user_id, friend_id))
        return True

    async def remove_friend(self, user_id: int, friend_id: int) -> None:
        """Delete the user → friend row (idempotent)."""
        await self.db.execute("DELETE FROM users_relationships WHERE user1 = %s AND user2 = %s", (user_id, friend_id))

    # ------------------------------------------------------------------ login logs
    _LOG_IP = ("INSERT INTO ip_user (userid, ip, occurencies) VALUES (%s, %s, 1) "
               "ON DUPLICATE KEY UPDATE occurencies = occurencies + 1")

    async def ip_known(self, user_id: int, ip: str) -> bool:
        """Whether ``ip_user`` has a row for this user and IP (Ripple's 2FA check)."""
        row = await self.db.fetch_one("SELECT 1 AS x FROM ip_user WHERE userid = %s AND ip = %s LIMIT 1", (user_id, ip))
        return row is not None

    async def totp_enabled(self, user_id: int) -> bool:
        """Whether ``2fa_totp.enabled`` is 1 for the user (Ripple flavour)."""
        row = await self.db.fetch_one("SELECT enabled FROM 2fa_totp WHERE userid = %s LIMIT 1", (user_id,))
        return bool(row and row.get("enabled"))

    async def log_hardware(self, user_id: int, mac: str, unique_id: str, disk_id: str, activated: bool) -> None:
        """Bump the ``hw_user`` row of these four columns, or insert it (works with and without
        UNIQUE(userid)); ``activated`` sets its flag (never clears it). Raises DatabaseError."""
        await self.db.batch(self._log_hardware_batch(user_id, mac, unique_id, disk_id, activated))

    @staticmethod
    def _log_hardware_batch(user_id: int, mac: str, unique_id: str, disk_id: str,
                            activated: bool) -> list[tuple[str, tuple]]:
        """:meth:`log_hardware` as statements of one :meth:`Database.batch`: the row's id is read
        into a session variable by a consistent (non-locking) SELECT, then the row is bumped by
        primary key, or inserted when there was none (docs/decisions.md, fifth pass: an UPDATE
        by the four columns would lock a gap and deadlock concurrent first logins)."""
        where = (user_id, mac, unique_id, disk_id)
        return [
            ("SET @pep_hw = NULL", ()),
            ("SELECT id INTO @pep_hw FROM hw_user WHERE userid = %s AND mac = %s AND unique_id = %s "
             "AND disk_id = %s LIMIT 1", where),
            ("UPDATE hw_user SET occurencies = occurencies + 1, activated = GREATEST(activated, %s) "
             "WHERE id = @pep_hw", (int(activated),)),
            ("INSERT INTO hw_user (userid, mac, unique_id, disk_id, occurencies, activated) "
             "SELECT %s, %s, %s, %s, 1, %s FROM DUAL WHERE @pep_hw IS NULL "
             "ON DUPLICATE KEY UPDATE occurencies = occurencies + 1", where + (int(activated),)),
        ]

    async def hardware_matches(self, user_id: int, mac: str, unique_id: str, disk_id: str, wine: bool) -> list[int]:
        """Other users with an activated row of the same hardware (docs/schema.md §3.1)."""
        if wine:
            rows = await self.db.fetch_all(
                "SELECT DISTINCT userid FROM hw_user WHERE unique_id = %s AND activated = 1 AND userid <> %s",
                (unique_id, user_id),
            )
        else:
            rows = await self.db.fetch_all(
                "SELECT DISTINCT userid FROM hw_user WHERE mac = %s AND unique_id = %s AND disk_id = %s "
                "AND activated = 1 AND userid <> %s",
                (mac, unique_id, disk_id, user_id),
            )
        return [int(r["userid"]) for r in rows]

    # ------------------------------------------------------------------ settings and channels
    async def settings(self) -> Settings:
        """``bancho_settings`` as :class:`Settings` (missing rows take their defaults)."""
        rows = await self.db.fetch_all("SELECT name, value_int, value_string FROM bancho_settings")
        values = {r["name"]: r for r in rows}

        def flag(name: str, default: bool) -> bool:
            row = values.get(name)
            return default if row is None else int(row["value_int"] or 0) == 1

        notification = values.get("login_notification")
        return Settings(
            maintenance=flag("bancho_maintenance", False),
            free_direct=flag("free_direct", True),
            login_notification=str(notification["value_string"] or "") if notification else "",
        )

    async def menu_icon(self, base: str) -> str:
        """``{base}/{file_id}.png|{url}`` of the current icon, or '' when there is none."""
        try:
            row = await self.db.fetch_one("SELECT file_id, url FROM main_menu_icons WHERE is_current = 1 LIMIT 1")
        except Exception:  # a dump without the table or with another shape: no icon
            return ""
        if not row or not row.get("file_id"):
            return ""
        return f"{base.rstrip('/')}/{row['file_id']}.png|{row.get('url') or ''}"

    async def set_maintenance(self, on: bool) -> None:
        """``bancho_settings.bancho_maintenance`` = 1/0 (docs/schema.md §4.1); the row is created if
        a dump lacks it (``value_string`` has no default there)."""
        row = await self.db.fetch_one("SELECT id FROM bancho_settings WHERE name = 'bancho_maintenance' LIMIT 1")
        if row is None:
            await self.db.execute(
                "INSERT INTO bancho_settings (name, value_int, value_string) VALUES ('bancho_maintenance', %s, '')",
                (int(on),),
            )
            return
        await self.db.execute("UPDATE bancho_settings SET value_int = %s WHERE name = 'bancho_maintenance'", (int(on),))

    async def save_first_country(self, user_id: int, country: str) -> bool:
        """Store ``country`` (two letters) only where the stored value is 'XX' (docs/schema.md §3.4):
        ``users.country`` for realistikosu, ``users_stats.country`` otherwise. Returns whether a
        row changed."""
        table = "users" if self.flavour.country_table == "users" else "users_stats"
        result = await self.db.execute(
            f"UPDATE {table} SET country = %s WHERE id = %s AND (country = 'XX' OR country = '' OR country IS NULL)",
            (country.upper()[:2], user_id),
        )
        return result.rowcount > 0

    async def load_admin_groups(self) -> None:
        """Ripple flavour: privileges of the groups whose members are admins."""
        if self.flavour.admin_rule != "groups":
            return
        rows = await self.db.fetch_all("SELECT name, privileges FROM privileges_groups")
        self.admin_groups = [int(r["privileges"]) for r in rows
                             if str(r["name"]).strip().lower() in privs.RIPPLE_ADMIN_GROUPS]

    async def channels(self) -> list[ChannelRow]:
        """Every ``bancho_channels`` row, in id order."""
        rows = await self.db.fetch_all(
            "SELECT name, description, public_read, public_write FROM bancho_channels ORDER BY id"
        )
        return [ChannelRow(str(r["name"]), str(r["description"] or ""), int(r["public_read"]) == 1,
                           int(r["public_write"]) == 1) for r in rows if r["name"]]

    # ------------------------------------------------------------------ web stack: renames, bans, logs
    async def menu_icon_by_id(self, icon_id: int, base: str) -> str | None:
        """``{base}/{file_id}.png|{url}`` of ``main_menu_icons`` row ``icon_id``, or None when
        there is no such row (``peppy:set_main_menu_icon``, docs/schema.md §4.3)."""
        row = await self.db.fetch_one("SELECT file_id, url FROM main_menu_icons WHERE id = %s LIMIT 1", (icon_id,))
        if not row or not row.get("file_id"):
            return None
        return f"{base.rstrip('/')}/{row['file_id']}.png|{row.get('url') or ''}"

    async def rename_user(self, user_id: int, new_name: str) -> tuple[str, str] | None:
        """Rename ``user_id`` to ``new_name`` in one transaction (docs/integration.md §1
        "change_username"): a dated CM note ``Username change: 'old' -> 'new'`` in
        ``users.notes``, ``users.username``/``username_safe`` and ``users_stats.username``;
        then, best effort, the ``username`` column of the flavour's other stats tables.

        Returns ``(old username, old safe name)``, or None when the user does not exist.
        Raises :class:`UsernameTaken` when another user has the same safe name, and
        :class:`common.db.DatabaseError`.
        """
        new_safe = safe_username(new_name)

        def work(cur: Any) -> tuple[str, str] | None:
            cur.execute("SELECT username, username_safe FROM users WHERE id = %s FOR UPDATE", (user_id,))
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute("SELECT id FROM users WHERE username_safe = %s AND id <> %s LIMIT 1", (new_safe, user_id))
            if cur.fetchone() is not None:
                raise UsernameTaken(new_name)
            old, old_safe = str(row["username"]), str(row["username_safe"])
            note = f"\n[{time.strftime('%Y-%m-%d %H:%M:%S')}] Username change: '{old}' -> '{new_name}'"
            cur.execute(
                "UPDATE users SET username = %s, username_safe = %s, notes = CONCAT(COALESCE(notes, ''), %s) "
                "WHERE id = %s", (new_name, new_safe, note, user_id),
            )
            cur.execute(f"UPDATE {self.flavour.stats_vanilla} SET username = %s WHERE id = %s", (new_name, user_id))
            return old, old_safe

        result = await self.db.transaction(work)
        if result is not None:
            for table in self.flavour.stats_tables:
                if table == self.flavour.stats_vanilla:
                    continue
                try:  # dumps disagree on which stats tables carry a username column
                    await self.db.execute(f"UPDATE {table} SET username = %s WHERE id = %s", (new_name, user_id))
                except DatabaseError as exc:
                    _log.warning("rename of %d: %s.username not updated: %s", user_id, table, exc)
        return result

    async def ban_user(self, user_id: int) -> None:
        """Ban (docs/schema.md §2.3): ``privileges &= ~3``, ``ban_datetime = now``."""
        await self.db.execute(
            "UPDATE users SET privileges = privileges & ~3, ban_datetime = %s WHERE id = %s",
            (int(time.time()), user_id),
        )

    async def restrict_user(self, user_id: int) -> None:
        """Restrict (docs/schema.md §2.3): ``privileges &= ~1``, ``ban_datetime = now``."""
        await self.db.execute(
            "UPDATE users SET privileges = privileges & ~1, ban_datetime = %s WHERE id = %s",
            (int(time.time()), user_id),
        )

    async def unban_user(self, user_id: int) -> None:
        """Unban / unrestrict (docs/schema.md §2.3): ``privileges |= 3``, ``ban_datetime = 0``."""
        await self.db.execute("UPDATE users SET privileges = privileges | 3, ban_datetime = 0 WHERE id = %s",
                              (user_id,))

    def leaderboard_keys(self, country: str) -> list[str]:
        """Every Redis leaderboard the user may be in (docs/integration.md §3): the flavour's
        vanilla, relax and autopilot boards for the four modes, and the country boards
        (lower-case ``cc``; none for ``xx``). Infix boards get ``:{cc}`` at the end
        (``ripple:leaderboard_relax:std:jp``); Ripple's suffix form puts it before the suffix
        (``ripple:leaderboard:std:jp:relax``). Kawata also keeps ``ripple:leaderboard_ap:*``."""
        f = self.flavour
        templates = [t for t in (f.board_vanilla, f.board_relax, f.board_autopilot) if t]
        templates += [t for t in _EXTRA_BOARDS.get(f.name, ()) if t not in templates]
        cc = country.strip().lower()
        keys: list[str] = []
        for template in templates:
            by_country = template + ":{cc}" if template.endswith("{m}") else template.replace("{m}", "{m}:{cc}", 1)
            for m in game.MODE_SUFFIX:
                keys.append(template.format(m=m))
                if cc and cc != "xx":
                    keys.append(by_country.format(m=m, cc=cc))
        return keys

    async def remove_from_leaderboards(self, user_id: int, country: str) -> None:
        """ZREM the user from every board of :meth:`leaderboard_keys` (ban and restrict).
        Raises :class:`redis.exceptions.RedisError`."""
        await self.redis.remove_from_sorted_sets(self.leaderboard_keys(country), str(user_id))

    async def admin_log(self, author_id: int, text: str, through: str = "FokaBot") -> bool:
        """Ripple's admin log (docs/rules.md §6.6): ``rap_logs(userid, text, datetime, through)``.
        Kawata and RealistikOsu keep no such log (returns False there)."""
        if self.flavour.name != "ripple":
            return False
        await self.db.execute(
            "INSERT INTO rap_logs (userid, text, datetime, through) VALUES (%s, %s, %s, %s)",
            (author_id, text, int(time.time()), through),
        )
        return True

    async def ban_log(self, from_id: int, to_id: int, summary: str, detail: str = "") -> bool:
        """RealistikOsu's ``ban_logs(from_id, to_id, summary, detail)`` row (docs/schema.md §2.3);
        other flavours keep none (returns False)."""
        if self.flavour.name != "realistikosu":
            return False
        await self.db.execute(
            "INSERT INTO ban_logs (from_id, to_id, summary, detail) VALUES (%s, %s, %s, %s)",
            (from_id, to_id, summary[:256], detail[:2048]),
        )
        return True

    # ------------------------------------------------------------------ bot commands (docs/rules.md §8)
    async def insert_report(self, from_uid: int, to_uid: int, reason: str, chatlog: str) -> int:
        """``reports(from_uid, to_uid, reason, chatlog, time)`` for ``!report`` (docs/schema.md §1.12,
        table "reports"); returns the new id."""
        result = await self.db.execute(
            "INSERT INTO reports (from_uid, to_uid, reason, chatlog, time) VALUES (%s, %s, %s, %s, %s)",
            (from_uid, to_uid, reason, chatlog, int(time.time())),
        )
        return result.lastrowid

    async def user_pp(self, user_id: int, mode: int, relax: bool = False, autopilot: bool = False) -> int:
        """Raw ``pp_{mode}`` (not clamped) from the stats table of the relax/autopilot state; 0 if none."""
        if not 0 <= mode <= 3:
            raise ValueError(f"mode {mode} out of range")
        table, _ = self.stats_source(mode, relax, autopilot)
        row = await self.db.fetch_one(
            f"SELECT pp_{game.MODE_SUFFIX[mode]} AS pp FROM {table} WHERE id = %s LIMIT 1", (user_id,)
        )
        return int(row["pp"] or 0) if row else 0

    async def last_score(self, user_id: int, relax: bool = False, autopilot: bool = False) -> dict[str, Any] | None:
        """The user's newest score for ``!last`` (docs/schema.md §6 item 16), joined with ``beatmaps``
        (``beatmap_id``, ``song_name``, ``beatmap_max_combo``, ``difficulty_*``; NULL when the map
        is unknown). Kawata: ``scores`` filtered by ``is_relax``; RealistikOsu: ``scores``,
        ``scores_relax`` or ``scores_ap``; Ripple: ``scores``. Newest = highest id."""
        table, where, args = "scores", "s.userid = %s", [user_id]
        if self.flavour.name == "realistikosu":
            table = "scores_relax" if relax else "scores_ap" if autopilot else "scores"
        elif self.flavour.name == "kawata":
            where += " AND s.is_relax = %s"
            args.append(1 if relax else 0)
        return await self.db.fetch_one(
            "SELECT s.*, b.beatmap_id, b.song_name, b.max_combo AS beatmap_max_combo, b.difficulty_std, "
            "b.difficulty_taiko, b.difficulty_ctb, b.difficulty_mania "
            f"FROM {table} s LEFT JOIN beatmaps b ON b.beatmap_md5 = s.beatmap_md5 "
            f"WHERE {where} ORDER BY s.id DESC LIMIT 1",
            tuple(args),
        )

    async def beatmap_by_id(self, beatmap_id: int) -> dict[str, Any] | None:
        """``beatmaps`` row (``beatmap_id``, ``beatmap_md5``, ``song_name``, ``mode``...) for
        ``!mp map`` (docs/rules.md §8.4), or None when the map is not cached."""
        return await self.db.fetch_one(
            "SELECT * FROM beatmaps WHERE beatmap_id = %s ORDER BY id DESC LIMIT 1", (beatmap_id,)
        )

    async def set_beatmap_status(self, beatmap_id: int, beatmapset_id: int | None, status: int,
                                 ranked_by: int) -> list[str]:
        """Kawata's ``!map`` (docs/commands.md): ``beatmaps.ranked = status``,
        ``ranked_status_freezed = 1``, ``rankedby = ranked_by`` (a user id, as Kawata writes it)
        for one difficulty (``beatmapset_id`` None) or every difficulty of the set, and closes the
        open ``map_requests`` of those maps. Returns the md5s of the set's difficulties (at most
        200) for ``ussr:refresh_bmap``."""

        def work(cur: Any) -> list[str]:
            if beatmapset_id is None:
                cur.execute("UPDATE beatmaps SET ranked = %s, ranked_status_freezed = 1, rankedby = %s "
                            "WHERE beatmap_id = %s", (status, str(ranked_by), beatmap_id))
                cur.execute("SELECT beatmap_md5 FROM beatmaps WHERE beatmap_id = %s LIMIT 200", (beatmap_id,))
            else:
                cur.execute("UPDATE beatmaps SET ranked = %s, ranked_status_freezed = 1, rankedby = %s "
                            "WHERE beatmapset_id = %s", (status, str(ranked_by), beatmapset_id))
                cur.execute("SELECT beatmap_md5 FROM beatmaps WHERE beatmapset_id = %s LIMIT 200", (beatmapset_id,))
            md5s = [str(r["beatmap_md5"]) for r in cur.fetchall()]
            try:
                if beatmapset_id is None:
                    cur.execute("UPDATE map_requests SET active = 0 WHERE active = 1 AND map_id = %s", (beatmap_id,))
                else:
                    cur.execute("UPDATE map_requests r JOIN beatmaps b ON b.beatmap_id = r.map_id SET r.active = 0 "
                                "WHERE r.active = 1 AND b.beatmapset_id = %s", (beatmapset_id,))
            except Exception as exc:  # no map_requests table (init-db not run since): nothing to close
                if not _no_such_table(exc):
                    raise
            return md5s

        return await self.db.transaction(work)

    async def add_map_request(self, map_id: int, player_id: int, limit: int) -> str:
        """bancho.py's ``!request``: an open ``map_requests`` row for ``map_id`` by ``player_id``,
        in one transaction. Returns ``"added"``, ``"duplicate"`` (already open for that map) or
        ``"full"`` (the player has ``limit`` open requests)."""

        def work(cur: Any) -> str:
            cur.execute("SELECT 1 FROM map_requests WHERE active = 1 AND map_id = %s LIMIT 1", (map_id,))
            if cur.fetchone() is not None:
                return "duplicate"
            cur.execute("SELECT COUNT(*) AS n FROM map_requests WHERE active = 1 AND player_id = %s", (player_id,))
            if int(cur.fetchone()["n"]) >= limit:
                return "full"
            cur.execute("INSERT INTO map_requests (map_id, player_id, datetime, active) VALUES (%s, %s, %s, 1)",
                        (map_id, player_id, int(time.time())))
            return "added"

        return await self.db.transaction(work)

    async def open_map_requests(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """bancho.py's ``!requests``: (how many requests are open, the oldest ``limit`` of them with
        ``map_id``, ``datetime``, ``username`` of the requester and ``song_name``, NULL when the
        map left the ``beatmaps`` table)."""
        total = int(await self.db.fetch_value("SELECT COUNT(*) FROM map_requests WHERE active = 1", default=0) or 0)
        rows = await self.db.fetch_all(
            "SELECT r.map_id, r.datetime, u.username, "
            "(SELECT b.song_name FROM beatmaps b WHERE b.beatmap_id = r.map_id LIMIT 1) AS song_name "
            "FROM map_requests r LEFT JOIN users u ON u.id = r.player_id "
            "WHERE r.active = 1 ORDER BY r.id LIMIT %s", (limit,))
        return total, rows

    async def set_frozen(self, user_id: int, frozen: bool, until: int = 0) -> bool:
        """RealistikOsu's freeze (``!freeze``/``!unfreeze``): ``users.frozen``, ``freezedate``
        (unix time the liveplay is due by, 0 when unfrozen) and, when unfreezing,
        ``firstloginafterfrozen = 1``. Returns whether the user exists."""
        if frozen:
            result = await self.db.execute("UPDATE users SET frozen = 1, freezedate = %s WHERE id = %s",
                                           (int(until), user_id))
        else:
            result = await self.db.execute(
                "UPDATE users SET frozen = 0, freezedate = 0, firstloginafterfrozen = 1 WHERE id = %s", (user_id,))
        return result.rowcount > 0 or await self.db.fetch_one("SELECT 1 FROM users WHERE id = %s", (user_id,)) is not None

    async def user_status(self, user_id: int) -> dict[str, Any] | None:
        """RealistikOsu's ``user_statuses`` row (``status``, ``enabled``) of a user, or None."""
        return await self.db.fetch_one("SELECT status, enabled FROM user_statuses WHERE user_id = %s LIMIT 1",
                                       (user_id,))

    async def enabled_status_text(self, user_id: int) -> str:
        """The user's RealistikOsu ``!status`` text when enabled, else "" (also when the
        ``user_statuses`` table does not exist)."""
        try:
            row = await self.user_status(user_id)
        except DatabaseError as exc:
            if exc.code != NO_SUCH_TABLE:
                raise
            return ""
        if row is None or not int(row.get("enabled") or 0):
            return ""
        return str(row.get("status") or "")

    async def set_user_status(self, user_id: int, status: str | None, enabled: bool) -> None:
        """Insert or update the user's ``user_statuses`` row (``status`` None keeps the text)."""
        if status is None:
            await self.db.execute("UPDATE user_statuses SET enabled = %s WHERE user_id = %s", (int(enabled), user_id))
        else:
            await self.db.execute(
                "INSERT INTO user_statuses (user_id, status, enabled) VALUES (%s, %s, %s) "
                "ON DUPLICATE KEY UPDATE status = VALUES(status), enabled = VALUES(enabled)",
                (user_id, status, int(enabled)))

    async def block_user(self, user_id: int, blocked_id: int) -> str:
        """bancho.py's ``!block``: a ``user_blocks`` row, and the friendship (if any) removed, in
        one transaction. Returns ``"added"``, ``"already"`` or ``"full"`` (:data:`MAX_BLOCKS`)."""

        def work(cur: Any) -> str:
            cur.execute("SELECT 1 FROM user_blocks WHERE user_id = %s AND blocked_id = %s", (user_id, blocked_id))
            if cur.fetchone() is not None:
                return "already"
            cur.execute("SELECT COUNT(*) AS n FROM user_blocks WHERE user_id = %s", (user_id,))
            if int(cur.fetchone()["n"]) >= MAX_BLOCKS:
                return "full"
            cur.execute("INSERT INTO user_blocks (user_id, blocked_id) VALUES (%s, %s)", (user_id, blocked_id))
            cur.execute("DELETE FROM users_relationships WHERE user1 = %s AND user2 = %s", (user_id, blocked_id))
            return "added"

        return await self.db.transaction(work)

    async def unblock_user(self, user_id: int, blocked_id: int) -> bool:
        """Delete the ``user_blocks`` row; whether there was one."""
        result = await self.db.execute("DELETE FROM user_blocks WHERE user_id = %s AND blocked_id = %s",
                                       (user_id, blocked_id))
        return result.rowcount > 0

    # ------------------------------------------------------------------ clans (!clan)
    async def user_clan(self, user_id: int) -> dict[str, Any] | None:
        """The clan of ``user_id`` (``clans`` row plus ``perms``: 1 member, 8 owner, as hanayo
        writes ``user_clans``), or None."""
        return await self.db.fetch_one(
            "SELECT c.id, c.name, c.tag, uc.perms FROM user_clans uc JOIN clans c ON c.id = uc.clan "
            "WHERE uc.user = %s ORDER BY uc.perms DESC LIMIT 1", (user_id,))

    async def clan_by_tag(self, tag: str) -> dict[str, Any] | None:
        """The ``clans`` row (id, name, tag) with this tag (case-insensitive), or None."""
        return await self.db.fetch_one("SELECT id, name, tag FROM clans WHERE tag = %s LIMIT 1", (tag,))

    async def create_clan(self, owner_id: int, name: str, tag: str) -> tuple[str, int]:
        """bancho.py's ``!clan create`` in one transaction: refuse when the owner is in a clan
        (``"member"``) or the name (``"name"``) or tag (``"tag"``) is taken; else insert the
        ``clans`` row and the owner's ``user_clans`` row (perms 8). Returns (result, clan id)."""

        def work(cur: Any) -> tuple[str, int]:
            cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (owner_id,))
            cur.execute("SELECT 1 FROM user_clans WHERE user = %s LIMIT 1", (owner_id,))
            if cur.fetchone() is not None:
                return "member", 0
            cur.execute("SELECT 1 FROM clans WHERE name = %s LIMIT 1", (name,))
            if cur.fetchone() is not None:
                return "name", 0
            cur.execute("SELECT 1 FROM clans WHERE tag = %s LIMIT 1", (tag,))
            if cur.fetchone() is not None:
                return "tag", 0
            cur.execute("INSERT INTO clans (name, description, icon, tag) VALUES (%s, '', '', %s)", (name, tag))
            clan_id = int(cur.lastrowid)
            cur.execute("INSERT INTO user_clans (user, clan, perms) VALUES (%s, %s, %s)",
                        (owner_id, clan_id, CLAN_OWNER))
            return "created", clan_id

        return await self.db.transaction(work)

    async def clan_members(self, clan_id: int) -> list[dict[str, Any]]:
        """(``id``, ``username``, ``perms``) of every member, owners first, at most 256."""
        return await self.db.fetch_all(
            "SELECT u.id, u.username, uc.perms FROM user_clans uc JOIN users u ON u.id = uc.user "
            "WHERE uc.clan = %s ORDER BY uc.perms DESC, u.id LIMIT 256", (clan_id,))

    async def disband_clan(self, clan_id: int) -> None:
        """Delete the clan and every membership, in one transaction."""

        def work(cur: Any) -> None:
            cur.execute("DELETE FROM user_clans WHERE clan = %s", (clan_id,))
            cur.execute("DELETE FROM clans WHERE id = %s", (clan_id,))

        await self.db.transaction(work)

    async def leave_clan(self, user_id: int, clan_id: int) -> int:
        """Remove the user's membership; returns how many members are left."""

        def work(cur: Any) -> int:
            cur.execute("DELETE FROM user_clans WHERE user = %s AND clan = %s", (user_id, clan_id))
            cur.execute("SELECT COUNT(*) AS n FROM user_clans WHERE clan = %s", (clan_id,))
            return int(cur.fetchone()["n"])

        return await self.db.transaction(work)

    async def clans_page(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(number of clans, ``limit`` clans from ``offset`` by id)."""
        total = int(await self.db.fetch_value("SELECT COUNT(*) FROM clans", default=0) or 0)
        rows = await self.db.fetch_all("SELECT id, name, tag FROM clans ORDER BY id LIMIT %s OFFSET %s",
                                       (limit, offset))
        return total, rows

    # ------------------------------------------------------------------ mappools (!pool, !mp pick)
    async def pool_by_name(self, name: str) -> dict[str, Any] | None:
        """The ``tourney_pools`` row (id, name, created_at, created_by) named ``name``, or None."""
        return await self.db.fetch_one(
            "SELECT id, name, created_at, created_by FROM tourney_pools WHERE name = %s LIMIT 1", (name,))

    async def create_pool(self, name: str, created_by: int) -> bool:
        """Insert a pool; False when the name is taken (the unique key)."""
        try:
            await self.db.execute("INSERT INTO tourney_pools (name, created_by) VALUES (%s, %s)", (name, created_by))
        except DatabaseError as exc:
            if exc.code == DUPLICATE_KEY:
                return False
            raise
        return True

    async def delete_pool(self, pool_id: int) -> None:
        """Delete the pool and its maps, in one transaction."""

        def work(cur: Any) -> None:
            cur.execute("DELETE FROM tourney_pool_maps WHERE pool_id = %s", (pool_id,))
            cur.execute("DELETE FROM tourney_pools WHERE id = %s", (pool_id,))

        await self.db.transaction(work)

    async def pools(self, limit: int = 50) -> list[dict[str, Any]]:
        """Every pool (oldest first, at most ``limit``) with its creator's name (``creator``)."""
        return await self.db.fetch_all(
            "SELECT p.id, p.name, p.created_at, COALESCE(u.username, '?') AS creator FROM tourney_pools p "
            "LEFT JOIN users u ON u.id = p.created_by ORDER BY p.id LIMIT %s", (limit,))

    async def pool_maps(self, pool_id: int) -> list[dict[str, Any]]:
        """The picks of a pool: ``map_id``, ``mods``, ``slot`` and ``song_name`` (from
        ``beatmaps``; "" when the map is not there), at most 128."""
        return await self.db.fetch_all(
            "SELECT m.map_id, m.mods, m.slot, COALESCE(b.song_name, '') AS song_name FROM tourney_pool_maps m "
            "LEFT JOIN beatmaps b ON b.beatmap_id = m.map_id WHERE m.pool_id = %s ORDER BY m.mods, m.slot LIMIT 128",
            (pool_id,))

    async def pool_pick(self, pool_id: int, mods: int, slot: int) -> int | None:
        """The beatmap id of pick ``mods``/``slot`` in the pool, or None."""
        value = await self.db.fetch_value(
            "SELECT map_id FROM tourney_pool_maps WHERE pool_id = %s AND mods = %s AND slot = %s LIMIT 1",
            (pool_id, mods, slot))
        return int(value) if value is not None else None

    async def add_pool_map(self, pool_id: int, map_id: int, mods: int, slot: int) -> str:
        """Add a pick in one transaction: ``"pick"`` when the pick is taken, ``"map"`` when the
        map is already in the pool, ``"full"`` at 128 maps, else ``"added"``."""

        def work(cur: Any) -> str:
            cur.execute("SELECT id FROM tourney_pools WHERE id = %s FOR UPDATE", (pool_id,))
            cur.execute("SELECT 1 FROM tourney_pool_maps WHERE pool_id = %s AND mods = %s AND slot = %s",
                        (pool_id, mods, slot))
            if cur.fetchone() is not None:
                return "pick"
            cur.execute("SELECT 1 FROM tourney_pool_maps WHERE pool_id = %s AND map_id = %s", (pool_id, map_id))
            if cur.fetchone() is not None:
                return "map"
            cur.execute("SELECT COUNT(*) AS n FROM tourney_pool_maps WHERE pool_id = %s", (pool_id,))
            if int(cur.fetchone()["n"]) >= 128:
                return "full"
            cur.execute("INSERT INTO tourney_pool_maps (map_id, pool_id, mods, slot) VALUES (%s, %s, %s, %s)",
                        (map_id, pool_id, mods, slot))
            return "added"

        return await self.db.transaction(work)

    async def remove_pool_map(self, pool_id: int, mods: int, slot: int) -> bool:
        """Delete pick ``mods``/``slot``; whether there was one."""
        result = await self.db.execute("DELETE FROM tourney_pool_maps WHERE pool_id = %s AND mods = %s AND slot = %s",
                                       (pool_id, mods, slot))
        return result.rowcount > 0

    # ------------------------------------------------------------------ offline messages
    async def store_offline_message(self, sender_id: int, recipient_safe_name: str, content: str,
                                    limit: int, bypass: bool = False) -> tuple[StoreResult, int, str]:
        """Keep a private message for an offline user, in one transaction: look the recipient up
        by safe name, refuse a banned or restricted one (unless ``bypass``, the bot), refuse when
        ``limit`` messages already wait for them, else insert. Returns (result, recipient id,
        recipient name); id 0 and name "" when the user does not exist. ``content`` is cut to
        2048 characters (the column)."""

        def work(cur: Any) -> tuple[StoreResult, int, str]:
            # the row lock serialises concurrent stores for one recipient, so the count below
            # cannot be passed by two transactions at once
            cur.execute("SELECT id, username, privileges FROM users WHERE username_safe = %s LIMIT 1 FOR UPDATE",
                        (recipient_safe_name,))
            row = cur.fetchone()
            if row is None:
                return StoreResult.UNKNOWN, 0, ""
            user_id, name = int(row["id"]), str(row["username"])
            if not bypass and not int(row["privileges"] or 0) & privs.USER_PUBLIC:
                return StoreResult.UNREACHABLE, user_id, name
            cur.execute("SELECT COUNT(*) AS n FROM offline_messages WHERE recipient_id = %s", (user_id,))
            if int(cur.fetchone()["n"]) >= limit:
                return StoreResult.FULL, user_id, name
            cur.execute("INSERT INTO offline_messages (sender_id, recipient_id, content, sent_at) "
                        "VALUES (%s, %s, %s, %s)", (sender_id, user_id, content[:2048], int(time.time())))
            return StoreResult.STORED, user_id, name

        return await self.db.transaction(work)

    async def take_offline_messages(self, recipient_id: int, limit: int) -> list[OfflineMessage]:
        """Remove and return the oldest ``limit`` messages kept for ``recipient_id``, oldest first,
        in one transaction (they are deleted before anyone is told of them, so each is delivered
        at most once). The sender's name is the current ``users.username`` ("?" if deleted)."""

        def work(cur: Any) -> list[OfflineMessage]:
            cur.execute("SELECT m.id, m.sender_id, COALESCE(u.username, '?') AS sender_name, m.content, m.sent_at "
                        "FROM offline_messages m LEFT JOIN users u ON u.id = m.sender_id "
                        "WHERE m.recipient_id = %s ORDER BY m.id LIMIT %s FOR UPDATE", (recipient_id, limit))
            rows = cur.fetchall()
            if rows:
                marks = ", ".join(["%s"] * len(rows))
                cur.execute(f"DELETE FROM offline_messages WHERE id IN ({marks})", tuple(r["id"] for r in rows))
            return [OfflineMessage(int(r["id"]), int(r["sender_id"]), str(r["sender_name"]), str(r["content"]),
                                   int(r["sent_at"])) for r in rows]

        return await self.db.transaction(work)

    async def restore_offline_messages(self, recipient_id: int, messages: list[OfflineMessage]) -> None:
        """Put back messages taken by :meth:`take_offline_messages` that could not be delivered
        (their ids, hence their order among later messages, are kept)."""
        await self.db.execute_many(
            "INSERT IGNORE INTO offline_messages (id, sender_id, recipient_id, content, sent_at) VALUES (%s, %s, %s, %s, %s)",
            [(m.id, m.sender_id, recipient_id, m.content, m.sent_at) for m in messages])


class UsernameTaken(ValueError):
    """Another user already has the safe form of the requested username."""


# leaderboards a flavour's score server keeps besides the ones it reads ranks from
_EXTRA_BOARDS: dict[str, tuple[str, ...]] = {"kawata": ("ripple:leaderboard_ap:{m}",)}
