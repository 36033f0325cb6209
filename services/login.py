"""Login: parse the body, check the account, build the session and its login sequence.

Sources: docs/protocol.md §1.2, §1.3, §5; docs/schema.md §2, §3; docs/rules.md §7.2–7.6. The checks that
need MySQL run before anything changes in memory, so a login that fails for any reason leaves
no token and no half-written state. The token is created, registered and announced in one
synchronous step at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
import sys
import time

import bcrypt

from common.db import DatabaseError
from common.ripple import safe_username
from constants import game, privileges as privs
from constants.countries import country_index
from services import channels, chat, moderation, session
from services.moderation import NOTICE_BANNED, NOTICE_RESTRICTED
from helpers import codec
from helpers import geo, metrics
from helpers.layout import OLDEST_BUILD
from objects.ratelimit import limit_key
from objects.token import Token, client_privileges
from objects.state import State

log = logging.getLogger("pep.login")

#: oldest supported build: the oldest with a protocol layout (helpers/layout.py; docs/protocol.md
#: §9.1); each build gets its own layout at login
MIN_BUILD = OLDEST_BUILD
#: builds accepted over HTTP: ``(oldest, newest)`` build dates, None = no upper bound (the
#: TCP-era builds never poll, but tests and tools may speak their layouts over HTTP)
HTTP_BUILDS: tuple[int, int | None] = (MIN_BUILD, None)
#: builds that connect over raw TCP instead of HTTP (docs/protocol.md §1.9): from the oldest
#: with a layout (b20121203) to b20130815, the last TCP build (b20130816 polls over HTTP)
TCP_BUILDS: tuple[int, int | None] = (OLDEST_BUILD, 20130815)
MAX_BODY = 4096
_VERSION = re.compile(r"b(\d{8})(?:\.(\d+))?([A-Za-z]*)")
_MD5 = re.compile(r"[0-9a-f]{32}")
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
# a valid bcrypt hash (cost 10) of nothing anyone sends: checked for unknown users so that the
# reply takes as long as for a wrong password
_DUMMY_HASH = bcrypt.hashpw(b"no account has this password", bcrypt.gensalt(10))
WINE_MAC = hashlib.md5(b"runningunderwine").hexdigest()
WINE_DISK = "ffae06fb022871fe9beb58b005c5e21d"

NOTICE_LOCKED = "Your account is locked. Please contact the staff of {server}."
NOTICE_MAINTENANCE = "Our bancho server is in maintenance mode. Please try to login again later."
NOTICE_MAINTENANCE_ADMIN = ("Bancho is in maintenance mode. Only mods/admins have full access to the server.\n"
                            "Type !system maintenance off in chat to turn off maintenance mode.")
NOTICE_RESTARTING = "Bancho is restarting. You will be reconnected in a few seconds."
NOTICE_ERROR = "The server has experienced an error while logging you in. Please try again later."
NOTICE_OLD = "Your osu! client is too old. Please update osu!."
NOTICE_HARDWARE = "Your client did not send its hardware information. Please restart osu!."
NOTICE_MULTI = "You already have an account on {server}. Multiple accounts are not allowed."
NOTICE_TOURNEY_STAFF = "Tournament clients are for tournament staff only. Please use the normal osu! client."
NOTICE_TOURNEY_LIMIT = "You have too many tournament clients open ({limit}). Close one and try again."
NOTICE_TOO_MANY = "Too many failed login attempts. Please wait a few minutes and try again."
NOTICE_BUSY = "The server is busy logging other players in. Please try again in a few seconds."
#: refusals that cost nothing and come in floods: logged once per interval with their count
#: (``State.login_refusal_logs``, docs/security.md)
REASON_TOO_MANY = "too many failed logins"
REASON_BUSY = "bcrypt queue full"
REASON_MALFORMED = "malformed login"


class LoginError(Exception):
    """A refused login: ``code`` is the login reply (docs/protocol.md §3.5), ``notice`` an optional text."""

    def __init__(self, code: int, notice: str = "", reason: str = "", restart_ms: int | None = None) -> None:
        super().__init__(reason or notice or str(code))
        self.code = code
        self.notice = notice
        self.reason = reason or notice
        self.restart_ms = restart_ms
        # the kind of refusal whose log lines are throttled (State.login_refusal_logs), if not the reason
        self.flood_key = ""

    def response(self) -> bytes:
        """Failure body: the optional notification, then the negative login reply (docs/protocol.md
        §5.3); with ``restart_ms`` a restart packet instead, so the client retries by itself
        after that many milliseconds (used while the server restarts)."""
        out = codec.notification(self.notice) if self.notice else b""
        if self.restart_ms is not None:
            return out + codec.restart(self.restart_ms)
        return out + codec.login_reply(self.code)


@dataclasses.dataclass
class LoginRequest:
    """A parsed login body (docs/protocol.md §1.2)."""

    username: str
    password_md5: str
    version: str
    build: int
    utc_offset: int
    osu_md5: str
    adapters: str
    adapters_md5: str
    uninstall_md5: str
    disk_md5: str
    block_nonfriend_pm: bool

    @property
    def tournament(self) -> bool:
        """A tournament client (``tourney`` in the version string): may hold several sessions."""
        return "tourney" in self.version

    @property
    def wine(self) -> bool:
        """The client runs under Wine (adapters ``runningunderwine`` or its md5)."""
        return self.adapters == "runningunderwine" or self.adapters_md5 == WINE_MAC


def parse(body: bytes, builds: tuple[int, int | None] = HTTP_BUILDS) -> LoginRequest:
    """Parse a login body strictly; raises :class:`LoginError` (-1 malformed, -2 a build outside
    ``builds``, the ``(oldest, newest)`` build dates of the transport: :data:`HTTP_BUILDS` or
    :data:`TCP_BUILDS`; None = no upper bound). Lines end with ``\\n``; a ``\\r`` before it is
    dropped (TCP-era clients end lines with ``\\r\\n``, docs/protocol.md §1.2)."""
    if len(body) > MAX_BODY:
        raise LoginError(game.LOGIN_FAILED, reason="login body too large")
    lines = body.decode("utf-8", "replace").split("\n")
    lines = [line.rstrip("\r") for line in lines]
    if len(lines) < 3:
        raise LoginError(game.LOGIN_FAILED, reason="login body has fewer than three lines")
    username, password_md5, info = lines[0].strip(), lines[1].strip().lower(), lines[2]
    if not username or len(username) > 30:
        raise LoginError(game.LOGIN_FAILED, reason="bad username")
    if not _MD5.fullmatch(password_md5):
        raise LoginError(game.LOGIN_FAILED, reason="password is not an md5")
    fields = info.split("|")
    if len(fields) < 4:
        raise LoginError(game.LOGIN_OLD_CLIENT, NOTICE_OLD, reason="client info has fewer than four fields")
    version = fields[0].strip()
    match = _VERSION.fullmatch(version)
    oldest, newest = builds
    if match is None or int(match.group(1)) < oldest or (newest is not None and int(match.group(1)) > newest):
        raise LoginError(game.LOGIN_OLD_CLIENT, NOTICE_OLD, reason=f"unsupported client version {version[:32]!r}")
    try:
        utc_offset = max(-24, min(24, int(fields[1].strip() or 0)))
    except ValueError:
        raise LoginError(game.LOGIN_FAILED, reason="utc offset is not a number") from None
    hashes = fields[3].rstrip(":").split(":")
    if len(hashes) < 4:
        raise LoginError(game.LOGIN_OLD_CLIENT, NOTICE_OLD, reason="fewer than four client hashes")
    hashes += [""] * (5 - len(hashes))
    block = len(fields) > 4 and fields[4].strip() == "1"
    return LoginRequest(
        username=username, password_md5=password_md5, version=version, build=int(match.group(1)),
        utc_offset=utc_offset, osu_md5=hashes[0][:32], adapters=hashes[1][:1024],
        adapters_md5=hashes[2][:32], uninstall_md5=hashes[3][:32], disk_md5=hashes[4][:32],
        block_nonfriend_pm=block,
    )


async def _bcrypt(state: State, md5: str, hashed: bytes, ip_key: str) -> bool:
    """One bcrypt check on the bcrypt pool (docs/security.md, Hardening II). Refused at once with
    :class:`LoginError` -1 and a "busy" notice when ``[limits] bcrypt_queue`` checks are already
    queued or running, or when the client address ``ip_key`` (IPv6 /64) already has
    ``[limits] bcrypt_per_ip`` of them: a flood, even from one address, must not make every
    other login wait behind it. Raises ValueError for a malformed hash."""
    limits = state.cfg.limits
    mine = state.bcrypt_by_ip.get(ip_key, 0)
    if state.bcrypt_pending >= limits.bcrypt_queue or mine >= limits.bcrypt_per_ip:
        raise LoginError(game.LOGIN_FAILED, NOTICE_BUSY, reason=REASON_BUSY)
    state.bcrypt_pending += 1
    state.bcrypt_by_ip[ip_key] = mine + 1
    try:
        return await asyncio.get_running_loop().run_in_executor(state.cpu_pool, bcrypt.checkpw, md5.encode(), hashed)
    finally:
        state.bcrypt_pending -= 1
        left = state.bcrypt_by_ip.get(ip_key, 1) - 1
        if left > 0:
            state.bcrypt_by_ip[ip_key] = left
        else:
            state.bcrypt_by_ip.pop(ip_key, None)


async def _check_password(state: State, user: dict | None, md5: str, ip_key: str = "") -> bool:
    """bcrypt(md5) against ``users.password_md5``; successful checks are cached per user id.
    Raises :class:`LoginError` when the bcrypt queue is full (``ip_key``: the client address)."""
    if user is None:
        await _bcrypt(state, md5, _DUMMY_HASH, ip_key)
        return False
    stored = str(user.get("password_md5") or "")
    user_id = int(user["id"])
    if state.password_cache.get(user_id) == (md5, stored):
        return True
    if not stored.startswith(_BCRYPT_PREFIXES) or len(stored) != 60:
        return False
    if state.repo.flavour.ripple_checks and int(user.get("password_version") or 2) == 1:
        return False
    hashed = ("$2b$" + stored[4:]) if stored.startswith("$2y$") else stored
    try:
        ok = await _bcrypt(state, md5, hashed.encode(), ip_key)
    except ValueError:  # a malformed stored hash
        return False
    if ok:
        state.password_cache[user_id] = (md5, stored)
    return ok


async def _verify_hardware(state: State, req: LoginRequest, user_id: int, privileges: int) -> int:
    """First login of a pending account (docs/schema.md §3.1): refuse a known machine, else activate.

    Returns the new privileges. Raises :class:`LoginError` when the hardware belongs to
    another account: the new account is no longer pending and is banned, the original is
    restricted, both through :mod:`services.moderation` (the one ban/restrict rule), with a
    line in each account's notes.
    """
    repo = state.repo
    if not (req.adapters_md5 and req.uninstall_md5 and req.disk_md5):
        raise LoginError(game.LOGIN_FAILED, NOTICE_HARDWARE, reason="no hardware hashes for verification")
    wine = req.wine or req.disk_md5 == WINE_DISK
    matches = await repo.hardware_matches(user_id, req.adapters_md5, req.uninstall_md5, req.disk_md5, wine)
    user = await repo.user_by_id(user_id)
    if matches and not (user and int(user.get("bypass_hwid") or 0)):
        original = min(matches)
        reason = f"multiaccount of user {original} (hardware match at first login)"
        await repo.set_privileges(user_id, privileges & ~privs.USER_PENDING_VERIFICATION)
        await repo.append_notes(user_id, f"Banned: {reason}")
        await moderation.ban(state, user_id, reason=reason)
        if await repo.user_by_id(original) is not None:
            await repo.append_notes(original, f"Restricted: created multiaccount {user_id}")
            await moderation.restrict(state, original, reason=f"created multiaccount {user_id}")
        state.verified[str(user_id)] = 0
        raise LoginError(game.LOGIN_BANNED, NOTICE_MULTI.format(server=state.cfg.stack.server_name),
                         reason=f"multi-account of {original}")
    new = (privileges & ~privs.USER_PENDING_VERIFICATION) | privs.USER_PUBLIC | privs.USER_NORMAL
    await repo.set_privileges(user_id, new)
    await repo.log_hardware(user_id, req.adapters_md5, req.uninstall_md5, req.disk_md5, activated=True)
    state.verified[str(user_id)] = 1
    return new


async def login(state: State, body: bytes, ip: str,
                builds: tuple[int, int | None] = HTTP_BUILDS) -> tuple[Token | None, bytes]:
    """Handle one login (an HTTP login POST, or the login lines of a TCP connection) from address
    ``ip``; ``builds`` is the transport's range of client builds (:func:`parse`). Returns (token
    or None, response body). Never raises."""
    token, parts = await login_parts(state, body, ip, builds)
    return token, b"".join(parts)


async def login_parts(state: State, body: bytes, ip: str,
                      builds: tuple[int, int | None] = HTTP_BUILDS) -> tuple[Token | None, list[bytes]]:
    """:func:`login` with the response body as the list of its parts (shared ``bytes`` objects,
    e.g. the token list's presence chunks, which a gzip reply compresses once:
    helpers/gzparts.py). Never raises."""
    started = time.monotonic()
    try:
        # bounded (docs/security.md, Hardening II): a hung MySQL or a long queue must not hold
        # the client; past the deadline it gets the "server error" reply. Only awaits are cut
        # short, and the session itself is built without any await, so nothing is half-created.
        token = await asyncio.wait_for(_login(state, body, ip, builds), state.cfg.server.login_timeout)
    except asyncio.TimeoutError:
        log.warning("login failed: no answer within %.1f s (MySQL or Redis hung?) ip=%s",
                    state.cfg.server.login_timeout, ip)
        metrics.count_login(game.LOGIN_ERROR)
        return None, [LoginError(game.LOGIN_ERROR, NOTICE_ERROR).response()]
    except LoginError as exc:
        flood = state.login_refusal_logs.get(exc.flood_key or exc.reason)
        if flood is not None:  # refused before any check: one line per interval, not per request
            flood.hit(exc.reason, ip)
        else:
            log.info("login refused ip=%s code=%d reason=%s", ip, exc.code, exc.reason)
        metrics.count_login(exc.code, exc.reason)
        return None, [exc.response()]
    except DatabaseError as exc:
        log.error("login failed: database error: %s", exc)
        metrics.count_login(game.LOGIN_ERROR)
        metrics.mysql_error()
        return None, [LoginError(game.LOGIN_ERROR, NOTICE_ERROR).response()]
    except Exception:
        log.exception("login failed: unexpected error")
        metrics.count_login(game.LOGIN_ERROR)
        return None, [LoginError(game.LOGIN_ERROR, NOTICE_ERROR).response()]
    metrics.count_login(token.user_id)
    log.info("login user=%d name=%s ip=%s version=%s%s in %.1f ms", token.user_id, token.username, ip,
             token.version, " tourney" if token.tournament else "", (time.monotonic() - started) * 1000)
    return token, token.drain_parts()


async def _authenticate(state: State, req: LoginRequest, safe_name: str, ip: str) -> dict:
    """Look the user up and check the password, under the failure limits (docs/security.md):
    past them the login is refused before any MySQL or bcrypt work, and an attempt in flight
    holds a slot of both limits (client address, IPv6 by /64, and account) until its check is
    done, so simultaneous attempts cannot pass together. Returns the ``users`` row; raises
    :class:`LoginError` (-1) for a refusal or a wrong password, DatabaseError from MySQL."""
    by_ip, by_account = state.login_failures_ip, state.login_failures_account
    ip_key = limit_key(ip)
    if not by_ip.begin(ip_key):
        raise LoginError(game.LOGIN_FAILED, NOTICE_TOO_MANY, reason=REASON_TOO_MANY)
    if not by_account.begin(safe_name):
        by_ip.end(ip_key, failed=False)
        raise LoginError(game.LOGIN_FAILED, NOTICE_TOO_MANY, reason=REASON_TOO_MANY)
    ok: bool | None = None  # None: no verdict (busy, MySQL error, cancelled): not a failure
    try:
        user = await state.repo.user_by_safe_name(safe_name)
        ok = await _check_password(state, user, req.password_md5, ip_key)
    finally:
        by_ip.end(ip_key, failed=ok is False)
        by_account.end(safe_name, failed=ok is False)
    if not ok:
        raise LoginError(game.LOGIN_FAILED, reason="wrong username or password")
    by_account.reset(safe_name)
    assert user is not None
    return user


async def _login(state: State, body: bytes, ip: str, builds: tuple[int, int | None] = HTTP_BUILDS) -> Token:
    cfg = state.cfg
    server = cfg.stack.server_name
    try:
        req = parse(body, builds)
    except LoginError as exc:
        exc.flood_key = REASON_MALFORMED
        raise
    if state.restarting:
        raise LoginError(game.LOGIN_FAILED, NOTICE_RESTARTING, reason="server restarting",
                         restart_ms=int(cfg.server.reconnect_delay * 1000))
    repo = state.repo
    safe_name = safe_username(req.username)
    user = await _authenticate(state, req, safe_name, ip)
    user_id = int(user["id"])
    if user_id == cfg.stack.bot_id:
        raise LoginError(game.LOGIN_FAILED, reason="the bot account cannot log in")
    privileges = int(user["privileges"] or 0)
    pending = bool(privileges & privs.USER_PENDING_VERIFICATION)
    if privileges & (privs.USER_PUBLIC | privs.USER_NORMAL) == 0 and not pending:
        raise LoginError(game.LOGIN_BANNED, NOTICE_BANNED.format(server=server), reason="banned")
    if repo.flavour.ripple_checks:
        if privileges & privs.USER_PUBLIC and not privileges & privs.USER_NORMAL:
            raise LoginError(game.LOGIN_INACTIVE, NOTICE_LOCKED.format(server=server), reason="locked")
        if await repo.totp_enabled(user_id) and not await repo.ip_known(user_id, ip):
            raise LoginError(game.LOGIN_VERIFICATION, reason="2fa verification required")
    if pending:
        privileges = await _verify_hardware(state, req, user_id, privileges)
    admin = await repo.is_admin(privileges)
    if state.settings.maintenance and not admin:
        raise LoginError(game.LOGIN_FAILED, NOTICE_MAINTENANCE, reason="maintenance")
    # tournament clients: tournament staff only, a bounded number each (docs/security.md,
    # "Hardening II: in game"); the count is checked again below, after the last await
    if req.tournament and not privileges & privs.USER_TOURNAMENT_STAFF:
        raise LoginError(game.LOGIN_FAILED, NOTICE_TOURNEY_STAFF, reason="tournament client without tournament staff")
    _check_tourney_sessions(state, req, user_id)

    # persistent logs of this login (docs/schema.md §2.6), then what the session needs: one round
    # trip to the MySQL pool instead of one per query (bench/README.md, login storm)
    hardware = (req.adapters_md5, req.uninstall_md5, req.disk_md5) if req.adapters_md5 and req.uninstall_md5 else None
    if pending:
        hardware = None  # _verify_hardware wrote this login's hw_user row (occurencies 1 at first)
    stats, country, friends, blocked, offline = await repo.login_records(user_id, user, ip, hardware, req.version)
    # RealistikOsu's !status text, shown in the idle/AFK status (docs/commands.md)
    status_text = await repo.enabled_status_text(user_id) if repo.flavour.name == "realistikosu" else ""
    # geolocation (docs/integration.md §5): the located country is shown; the first one is saved
    # where the stored value is 'XX' (docs/schema.md §3.4); else the stored country and (0, 0)
    location = geo.locate(getattr(state, "geo", None), ip)
    if location is not None:
        if country == "XX":
            await repo.save_first_country(user_id, location.country)
        country = location.country

    # ---- from here on: memory only, no awaits (the session appears atomically)
    _check_tourney_sessions(state, req, user_id)
    restricted = not privileges & privs.USER_PUBLIC
    token = Token(user_id, str(user["username"]), str(user["username_safe"]), privileges,
                  restricted=restricted, admin=admin, tournament=req.tournament, ip=ip,
                  version=req.build, utc_offset=req.utc_offset, max_queue=cfg.limits.max_queue)
    if state.cluster is not None:  # the token shows its node (docs/cluster.md, routing)
        token.token = state.cluster.token_prefix + token.token
    token.country = sys.intern(country)  # one shared str per country, not one per session
    token.country_index = country_index(country)
    if location is not None:
        token.latitude, token.longitude = location.latitude, location.longitude
    token.silence_end = int(user.get("silence_end") or 0)
    if friends:
        token.friends = set(friends)
    if blocked:
        token.blocked = set(blocked)
    token.block_nonfriend_dms = req.block_nonfriend_pm
    token.presence_rank = repo.presence_rank(privileges, admin, False)
    token.client_privileges = client_privileges(privileges, admin, restricted)
    token.status_text = status_text
    if repo.flavour.relax_prefix:
        token.action_text = "[VN]"
    token.set_stats(stats.ranked_score, stats.accuracy, stats.playcount, stats.total_score, stats.rank, stats.pp)

    # a live session of this node from the same address already put it in peppy:sessions:<id>
    # (a re-login replacing it keeps it there: session.logout's next_ip), so no SADD again
    ip_listed = any(t.ip == ip and t.irc is None and t.node is None for t in state.tokens.user_tokens(user_id))
    if not req.tournament:
        for old in state.tokens.user_tokens(user_id):
            if not old.tournament and old.irc is None:  # replaced, not leaving (IRC stays: docs/irc.md): no logout broadcast before the new presence
                session.logout(state, old, broadcast=False, next_ip=ip)
    _login_sequence(state, token, user)
    state.tokens.add(token)
    if not restricted:
        state.tokens.broadcast(token.presence_packet(), but=token)
    if ip and not ip_listed:
        state.spawn(state.redis.add_session_ip(user_id, ip), "session ip")
    if offline and not restricted:  # kept while the user was offline (read by login_records)
        state.spawn(chat.deliver_offline_messages(state, token), f"offline messages of {user_id}")
    return token


def _check_tourney_sessions(state: State, req: LoginRequest, user_id: int) -> None:
    """Refuse (-1 and a notification) a tournament client of a user who already holds
    ``[limits] tournament_sessions`` of them."""
    if not req.tournament:
        return
    limit = state.cfg.limits.tournament_sessions
    held = sum(1 for t in state.tokens.user_tokens(user_id) if t.tournament and not t.kicked)
    if held >= limit:
        raise LoginError(game.LOGIN_FAILED, NOTICE_TOURNEY_LIMIT.format(limit=limit),
                         reason=f"{held} tournament sessions already")


def _login_sequence(state: State, token: Token, user: dict) -> None:
    """Queue the login response (docs/protocol.md §5.1; order documented in docs/decisions.md)."""
    cfg = state.cfg
    server = cfg.stack.server_name
    enqueue = token.enqueue
    layout = token.layout
    enqueue(codec.protocol_version(layout.protocol))
    enqueue(codec.login_reply(token.user_id))
    enqueue(codec.privileges(token.client_privileges))
    if state.settings.login_notification:
        enqueue(codec.notification(state.settings.login_notification))
    if state.settings.maintenance and token.admin:
        enqueue(codec.notification(NOTICE_MAINTENANCE_ADMIN))
    donor_expire = int(user.get("donor_expire") or 0)
    if token.privileges & privs.USER_DONOR and 0 < donor_expire - time.time() <= 3 * 86400:
        hours = int((donor_expire - time.time()) // 3600)
        when = f"{hours // 24} days" if hours >= 48 else "less than 48 hours"
        enqueue(codec.notification(f"Your supporter status expires in {when}! Thank you for supporting {server}."))
    enqueue(token.presence_packet())
    enqueue(token.stats_packet(layout))
    # auto-join #osu, #announce, and #admin for admins (docs/rules.md §6.1)
    for name in ("#osu", "#announce") + (("#admin",) if token.admin else ()):
        channel = state.channels.get(name)
        if channel is not None and channel.can_read(token):
            channels.join_channel(state, token, channel)
    for channel in state.channels.listed():
        enqueue(channel.info_packet())
    enqueue(codec.channel_info_end())
    enqueue(codec.friends_list(sorted(token.friends)))
    if state.settings.menu_icon:
        enqueue(codec.main_menu_icon(state.settings.menu_icon, layout))
    enqueue(codec.silence_end(token.silence_left()))
    # everyone visible who is online (the bot included), once per user: the token list's cached
    # chunks, re-read only for the users whose presence changed since the last login
    for part in state.tokens.presence_parts(token.user_id):
        enqueue(part)
    if token.restricted:
        enqueue(codec.account_restricted())
        chat.bot_private(state, token, NOTICE_RESTRICTED.format(server=server))
