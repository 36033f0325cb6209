"""Tillerino-style pp commands: ``/np``, ``!with``, ``!acc``, ``!last`` and the pp API client.

Sources: docs/rules.md §8.5 and docs/integration.md §5. The pp API is LETS's (or USSR's)
``GET {[lets] api_url}/v1/pp?b={beatmap id}&m={mods}[&a={accuracy}]``; it answers JSON with
``status`` (200 when fine), ``song_name``, ``pp`` (a list for 100/99/98/95 % without an
accuracy, else one number, or a one-element list), ``stars``, ``ar``, ``bpm`` and ``message``.
The HTTP call runs on a small thread pool (``requests`` blocks) with ``[lets] timeout`` seconds,
so the poll never waits; the reply is sent when the answer is in.

[FIX]es: the accuracy goes as ``&a=`` (K sent ``&a98``); new-style links
(``/beatmapsets/<set>#<mode>/<id>``, ``/beatmaps/<id>``) work; an unreachable API, a timeout and
a bad answer each get a clear reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
from typing import TYPE_CHECKING, Any

import requests

from constants import game
from constants.mods import AP, DT, EZ, FL, HD, HR, HT, NC, NF, PF, RX, SD, SO
from constants.mods import names as mod_names
from services.commands import ANYWHERE, Context, KAWATA, PRIVATE, REALISTIK, RIPPLE_LIKE, STACKS, command

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.commands.np")

NEED_NP = "Please give me a beatmap first with /np command."
API_TIMEOUT = "API Timeout. Please try again in a few seconds."
API_UNREACHABLE = "The pp API is unreachable right now. Please try again later."
API_UNKNOWN = "Unknown error in LETS API call."
API_ERROR = "Error in LETS API call ({message})."
NO_BEATMAP = "I couldn't find a beatmap in that link. Please /np a difficulty, not a beatmap set."
BUSY = "I'm still working on your previous request, please wait a moment."

#: ``!with`` codes (K adds RX and AP)
WITH_CODES = {"NF": NF, "EZ": EZ, "HD": HD, "HR": HR, "DT": DT, "HT": HT, "NC": NC | DT, "FL": FL, "SO": SO,
              "RX": RX, "AP": AP}
INVALID_MODS = ("Invalid mods. Allowed mods: NO, NF, EZ, HD, HR, DT, HT, NC, FL, SO, RX, AP. "
                "Do not use spaces for multiple mods.")
#: mod names as the client writes them in /np ("+Hidden", "-Easy", "~Relax~"...)
NP_MODS = {"easy": EZ, "nofail": NF, "hidden": HD, "hardrock": HR, "suddendeath": SD, "doubletime": DT,
           "nightcore": NC | DT, "halftime": HT, "flashlight": FL, "spunout": SO, "relax": RX,
           "autopilot": AP, "relax2": AP, "perfect": PF | SD}
_BEATMAP_IN_URL = re.compile(r"(?:/b/|/beatmaps/|#(?:osu|taiko|fruits|mania)?/)(\d{1,10})(?!\d)")
_NP_MOD = re.compile(r"(?:^|\s)[+\-~|]([A-Za-z0-9]+)[~|]?")



# ------------------------------------------------------------------------------------ /np state
@dataclasses.dataclass
class NowPlaying:
    """The sender's last /np (docs/rules.md §8.5: beatmap, mods, accuracy)."""

    beatmap_id: int
    mods: int = 0
    accuracy: float | None = None


def get_np(token: Token) -> NowPlaying | None:
    """The last /np of this session (``token.now_playing``), or None."""
    return token.now_playing


def set_np(state: State, token: Token, np: NowPlaying) -> None:
    """Remember ``np`` for this session (it goes away with the session)."""
    token.now_playing = np


def mods_text(mods: int) -> str:
    """``HDHR``-style letters (:func:`constants.mods.names`)."""
    return mod_names(mods)


def parse_np(verb_rest: str) -> tuple[int | None, int]:
    """(beatmap id or None, mods) from what follows ``is playing`` / ``is listening to``.

    The link is the first word minus its ``[``; mods are the ``+Hidden``-style words after the
    closing bracket (only playing/watching carry them).
    """
    text = verb_rest.strip().rstrip("\x01").strip()
    words = text.split(None, 1)
    if not words:
        return None, 0
    url = words[0].lstrip("[")
    found = _BEATMAP_IN_URL.search(url)
    beatmap_id = int(found.group(1)) if found else None
    if beatmap_id is not None and not 0 < beatmap_id < 2**31:
        beatmap_id = None
    mods = 0
    tail = text[text.rfind("]") + 1:] if "]" in text else ""
    for name in _NP_MOD.findall(tail):
        mods |= NP_MODS.get(name.lower(), 0)
    return beatmap_id, mods


# ------------------------------------------------------------------------------------ the API
class PPError(Exception):
    """The pp API could not answer; the message is the reply for the user."""


def _get(url: str, params: dict[str, Any], timeout: float) -> tuple[int, Any]:
    resp = requests.get(url, params=params, timeout=timeout)
    try:
        data = resp.json()
    except ValueError:
        data = None
    return resp.status_code, data


async def fetch_pp(state: State, beatmap_id: int, mods: int = 0, accuracy: float | None = None) -> dict[str, Any]:
    """Ask the pp API about a beatmap. Returns the decoded JSON object (``status`` 200).

    Raises :class:`PPError` with the user-facing text on a timeout (``[lets] timeout`` s), an
    unreachable API, a non-JSON answer or an error answer.
    """
    url = state.cfg.lets.api_url.rstrip("/") + "/v1/pp"
    params: dict[str, Any] = {"b": beatmap_id, "m": mods}
    if accuracy is not None:
        params["a"] = f"{accuracy:.2f}"
    loop = asyncio.get_running_loop()
    try:
        status, data = await loop.run_in_executor(state.io_pool, functools.partial(_get, url, params, state.cfg.lets.timeout))
    except requests.Timeout:
        log.warning("pp API timeout: %s %s", url, params)
        raise PPError(API_TIMEOUT) from None
    except requests.RequestException as exc:
        log.warning("pp API unreachable: %s: %s", url, exc)
        raise PPError(API_UNREACHABLE) from None
    if not isinstance(data, dict):
        log.warning("pp API answered HTTP %d without a JSON object", status)
        raise PPError(API_UNKNOWN)
    api_status = data.get("status", status)
    if status != 200 or api_status != 200:
        message = data.get("message")
        raise PPError(API_ERROR.format(message=message) if isinstance(message, str) and message else API_UNKNOWN)
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def format_pp(data: dict[str, Any], np: NowPlaying) -> str:
    """The reply (O format, pp rounded to 2 decimals):
    ``{song} +MODS  95%: Xpp | 98%: Xpp | 99%: Xpp | 100%: Xpp | {bpm} BPM | AR {ar} | {stars} stars``,
    or ``{song} +MODS  {acc}%: Xpp | ...`` when an accuracy is set. AR is shown after EZ/HR with
    the original in parentheses."""
    song = str(data.get("song_name") or f"Beatmap {np.beatmap_id}")
    mods = mods_text(np.mods)
    head = f"{song} +{mods}" if mods else song
    pp = data.get("pp")
    parts: list[str] = []
    if np.accuracy is not None:
        value = _number(pp[0] if isinstance(pp, list) and pp else pp)
        if value is None:
            raise PPError(API_UNKNOWN)
        parts.append(f"{np.accuracy:.2f}%: {value:.2f}pp")
    else:
        values = [_number(v) for v in pp] if isinstance(pp, list) else []
        if len(values) >= 4 and all(v is not None for v in values[:4]):
            pp100, pp99, pp98, pp95 = values[:4]
            parts.append(f"95%: {pp95:.2f}pp | 98%: {pp98:.2f}pp | 99%: {pp99:.2f}pp | 100%: {pp100:.2f}pp")
        else:
            single = _number(pp)
            if single is None:
                raise PPError(API_UNKNOWN)
            parts.append(f"100%: {single:.2f}pp")
    bpm = _number(data.get("bpm"))
    if bpm is not None:
        parts.append(f"{bpm:g} BPM")
    ar = _number(data.get("ar"))
    if ar is not None:
        shown = ar
        if np.mods & EZ:
            shown = ar / 2
        elif np.mods & HR:
            shown = min(10.0, ar * 1.4)
        parts.append(f"AR {shown:.3g}" + (f" ({ar:.3g})" if shown != ar else ""))
    stars = _number(data.get("stars"))
    if stars:
        parts.append(f"{stars:.2f} stars")
    return f"{head}  " + " | ".join(parts)


async def pp_reply(ctx: Context, np: NowPlaying) -> str:
    """Ask the API about ``np`` and format the answer or the error (one request per user at a time)."""
    user_id = ctx.sender.user_id
    if user_id in ctx.state.pp_pending:
        return BUSY
    ctx.state.pp_pending.add(user_id)
    try:
        data = await fetch_pp(ctx.state, np.beatmap_id, np.mods, np.accuracy)
        return format_pp(data, np)
    except PPError as exc:
        return str(exc)
    finally:
        ctx.state.pp_pending.discard(user_id)


# ------------------------------------------------------------------------------------ /np
def _np_handler(ctx: Context):
    beatmap_id, mods = parse_np(ctx.rest)
    if beatmap_id is None:
        return NO_BEATMAP
    if "listening to" in ctx.command.trigger:
        mods = 0
    np = NowPlaying(beatmap_id, mods)
    set_np(ctx.state, ctx.sender, np)
    return pp_reply(ctx, np)


_NP_DOC = ("Send /np in a PM to the bot while playing, watching or listening to a map: the pp for "
           "95/98/99/100% with the mods shown, BPM, AR and stars (from the pp API).")
for _verb, _hidden in (("is playing", False), ("is listening to", True), ("is watching", True)):
    command(f"\x01ACTION {_verb}", where=PRIVATE, wrong_place="", hidden=_hidden, display="/np", stacks=STACKS,
            description=_NP_DOC)(_np_handler)


# ------------------------------------------------------------------------------------ !with
def parse_with(word: str) -> int | None:
    """Mods from concatenated two-letter codes (``HDHR``, ``+hddt``); ``NO`` = none; None if bad."""
    code = word.strip().lstrip("+").upper()
    if not code or len(code) % 2:
        return None
    mods = 0
    for i in range(0, len(code), 2):
        part = code[i:i + 2]
        if part == "NO":
            mods = 0
            continue
        bit = WITH_CODES.get(part)
        if bit is None:
            return None
        mods |= bit
    return mods


@command("!with", "<mods>", where=PRIVATE,
         description="Recomputes the pp of your last /np with other mods, e.g. !with HDDT (NO for none).", stacks=STACKS)
def with_(ctx: Context):
    np = get_np(ctx.sender)
    if np is None:
        return NEED_NP
    mods = parse_with(ctx.args[0]) if len(ctx.args) == 1 else None
    if mods is None:
        return INVALID_MODS
    np.mods = mods
    return pp_reply(ctx, np)


# ------------------------------------------------------------------------------------ !acc
@command("!acc", "<accuracy>", where=PRIVATE,
         description="Recomputes the pp of your last /np for one accuracy, e.g. !acc 98.5.", stacks=(KAWATA, REALISTIK))
def acc(ctx: Context):
    np = get_np(ctx.sender)
    if np is None:
        return NEED_NP
    try:
        value = float(ctx.args[0].rstrip("%"))
    except ValueError:
        return "Invalid acc value"
    if not 0 < value <= 100 or value != value:
        return "Invalid acc value"
    np.accuracy = value
    return pp_reply(ctx, np)


# ------------------------------------------------------------------------------------ !last
_MODE_NAMES = ("osu!", "Taiko", "Catch the Beat", "osu!mania")


def grade(mode: int, accuracy: float, n300: int, n100: int, n50: int, nmiss: int, ngeki: int, nkatu: int,
          mods: int, completed: int) -> str:
    """The osu! grade letter of a score (F when it was not completed; SSH/SH shown as XH/SH)."""
    if completed == 0:
        return "F"
    hidden = bool(mods & (HD | FL))
    if mode in (game.STD, game.TAIKO):
        total = n300 + n100 + n50 + nmiss
        if total <= 0:
            return "D"
        r300, r50 = n300 / total, n50 / total
        if r300 == 1:
            rank = "SS"
        elif r300 > 0.9 and r50 <= 0.01 and nmiss == 0:
            rank = "S"
        elif (r300 > 0.8 and nmiss == 0) or r300 > 0.9:
            rank = "A"
        elif (r300 > 0.7 and nmiss == 0) or r300 > 0.8:
            rank = "B"
        elif r300 > 0.6:
            rank = "C"
        else:
            rank = "D"
    else:
        acc_ = accuracy
        if acc_ >= 100:
            rank = "SS"
        elif acc_ > (98 if mode == game.CTB else 95):
            rank = "S"
        elif acc_ > (94 if mode == game.CTB else 90):
            rank = "A"
        elif acc_ > (90 if mode == game.CTB else 80):
            rank = "B"
        elif acc_ > (85 if mode == game.CTB else 70):
            rank = "C"
        else:
            rank = "D"
    if hidden and rank in ("SS", "S"):
        rank += "H"
    return rank


@command("!last", where=ANYWHERE,
         description="Shows your most recent score (relax/autopilot included) with its pp and stars.", stacks=RIPPLE_LIKE)
async def last(ctx: Context) -> str:
    """docs/rules.md §8.5 ``!last``: the newest score of the sender in the scores table of its
    current relax/autopilot state (K), joined with ``beatmaps``; stars come from the pp API
    (with the score's mods) and fall back to ``beatmaps.difficulty_{mode}`` when it cannot
    answer. The score becomes the sender's /np, so ``!with`` and ``!acc`` work after it."""
    state = ctx.state
    row = await state.repo.last_score(ctx.sender.user_id, ctx.sender.relax, ctx.sender.autopilot)
    if row is None:
        return "Please submit a score!"
    mode = int(row.get("play_mode") or 0) if 0 <= int(row.get("play_mode") or 0) <= 3 else 0
    mods = int(row.get("mods") or 0)
    beatmap_id = int(row.get("beatmap_id") or 0)
    song = str(row.get("song_name") or "Unknown beatmap")
    accuracy = float(row.get("accuracy") or 0)
    n300, n100, n50 = int(row.get("300_count") or 0), int(row.get("100_count") or 0), int(row.get("50_count") or 0)
    nmiss, ngeki, nkatu = (int(row.get("misses_count") or 0), int(row.get("gekis_count") or 0),
                           int(row.get("katus_count") or 0))
    combo, max_combo = int(row.get("max_combo") or 0), int(row.get("beatmap_max_combo") or 0)
    rank = grade(mode, accuracy, n300, n100, n50, nmiss, ngeki, nkatu, mods, int(row.get("completed") or 0))
    stars = _number(row.get(f"difficulty_{game.MODE_SUFFIX[mode]}")) or 0.0
    if beatmap_id > 0:
        set_np(state, ctx.sender, NowPlaying(beatmap_id, mods))
        try:
            data = await fetch_pp(state, beatmap_id, mods)
            stars = _number(data.get("stars")) or stars
        except PPError as exc:
            log.info("!last without API stars: %s", exc)
    link = f"[https://osu.ppy.sh/b/{beatmap_id} {song}]" if beatmap_id > 0 else song
    text = link
    if mode != game.STD:
        text += f" <{_MODE_NAMES[mode]}>"
    if mods_text(mods):
        text += f" +{mods_text(mods)}"
    fc = " (FC)" if max_combo and combo >= max_combo else (f" {combo}x/{max_combo}x" if max_combo else f" {combo}x")
    if mode == game.CTB:
        text += (f" | {int(row.get('score') or 0):,}{fc} | {accuracy:.2f}%, {rank}"
                 f" {{ {n300} / {n100} / {n50} / {nmiss} }} | {stars:.2f} stars")
    else:
        text += f" ({accuracy:.2f}%, {rank}){fc} | {float(row.get('pp') or 0):.2f}pp | {stars:.2f} stars"
    return text
