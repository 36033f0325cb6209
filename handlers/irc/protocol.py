"""IRC wire format: parsing client lines and building server lines (RFC 1459 / RFC 2812).

Pure functions, no I/O and no state (docs/irc.md, "What works"). Lines are ``bytes`` on the
wire; every builder returns one complete line ending in CRLF, encoded as UTF-8.
"""

from __future__ import annotations

import time

#: the longest client line accepted, CRLF included (RFC 1459 §2.3)
MAX_LINE = 512
#: the most parameters a client line may carry (RFC 1459 §2.3)
MAX_PARAMS = 15

# numerics used by the gateway (RFC 2812 §5, plus 005 and 417 from common practice)
RPL_WELCOME = "001"
RPL_YOURHOST = "002"
RPL_CREATED = "003"
RPL_MYINFO = "004"
RPL_ISUPPORT = "005"
RPL_UMODEIS = "221"
RPL_LUSERCLIENT = "251"
RPL_LUSEROP = "252"
RPL_LUSERCHANNELS = "254"
RPL_LUSERME = "255"
RPL_AWAY = "301"
RPL_USERHOST = "302"
RPL_ISON = "303"
RPL_UNAWAY = "305"
RPL_NOWAWAY = "306"
RPL_WHOISUSER = "311"
RPL_WHOISSERVER = "312"
RPL_ENDOFWHO = "315"
RPL_ENDOFWHOIS = "318"
RPL_WHOISCHANNELS = "319"
RPL_LISTSTART = "321"
RPL_LIST = "322"
RPL_LISTEND = "323"
RPL_CHANNELMODEIS = "324"
RPL_NOTOPIC = "331"
RPL_TOPIC = "332"
RPL_WHOREPLY = "352"
RPL_NAMREPLY = "353"
RPL_ENDOFNAMES = "366"
RPL_ENDOFBANLIST = "368"
RPL_MOTD = "372"
RPL_MOTDSTART = "375"
RPL_ENDOFMOTD = "376"
ERR_NOSUCHNICK = "401"
ERR_NOSUCHCHANNEL = "403"
ERR_CANNOTSENDTOCHAN = "404"
ERR_TOOMANYTARGETS = "407"
ERR_NORECIPIENT = "411"
ERR_NOTEXTTOSEND = "412"
ERR_INPUTTOOLONG = "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NONICKNAMEGIVEN = "431"
ERR_ERRONEUSNICKNAME = "432"
ERR_NOTONCHANNEL = "442"
ERR_NOTREGISTERED = "451"
ERR_NEEDMOREPARAMS = "461"
ERR_ALREADYREGISTRED = "462"
ERR_PASSWDMISMATCH = "464"
ERR_YOUREBANNEDCREEP = "465"
ERR_INVITEONLYCHAN = "473"
ERR_CHANOPRIVSNEEDED = "482"
ERR_UMODEUNKNOWNFLAG = "501"
ERR_INVALIDCAPCMD = "410"

#: IRCv3 capabilities offered (docs/irc.md): ``multi-prefix`` (all prefixes in NAMES/WHO; we
#: only ever have one) and ``server-time`` (an ``@time=`` tag on relayed messages)
CAPABILITIES = ("multi-prefix", "server-time")


def decode(raw: bytes) -> str:
    """A client line as text: UTF-8, or Latin-1 when it is not valid UTF-8 (as IRC clients
    with a legacy charset send it; docs/decisions.md "IRC gateway"). NUL bytes are dropped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\x00", "")


def parse(line: str) -> tuple[str, list[str]] | None:
    """Split a client line (without CRLF) into ``(COMMAND upper-cased, params)``.

    Tags (``@...``) and a prefix (``:...``) are skipped; a ``:`` parameter takes the rest of
    the line. At most :data:`MAX_PARAMS` parameters (the rest is joined into the last one).
    Returns None for an empty line. Never raises.
    """
    line = line.strip("\r\n")
    if line.startswith("@"):
        _, _, line = line.partition(" ")
    line = line.lstrip(" ")
    if line.startswith(":"):
        _, _, line = line.partition(" ")
    line = line.lstrip(" ")
    if not line:
        return None
    trailing = None
    head, sep, rest = line.partition(" :")
    if line.startswith(":"):  # no command, only a trailing part
        return None
    if sep:
        trailing = rest
    words = head.split()
    if not words:
        return None
    command = words[0].upper()
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    if len(params) > MAX_PARAMS:
        params = params[: MAX_PARAMS - 1] + [" ".join(params[MAX_PARAMS - 1:])]
    return command, params


def nick_of(username: str) -> str:
    """The IRC nick of a username: spaces become underscores (as on the official server)."""
    return username.replace(" ", "_")


def line(prefix: str | None, command: str, *params: str) -> bytes:
    """One server line: ``:prefix COMMAND p1 p2 :last`` + CRLF, UTF-8.

    The last parameter is always sent as a trailing (``:``) parameter when it is empty or
    contains a space or starts with ``:``; CR, LF and NUL in parameters become spaces so a
    parameter can never start a new line.
    """
    parts = [] if prefix is None else [":" + prefix]
    parts.append(command)
    for index, param in enumerate(params):
        param = param.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
        if index == len(params) - 1 and (not param or " " in param or param.startswith(":")):
            parts.append(":" + param)
        else:
            parts.append(param)
    return (" ".join(parts) + "\r\n").encode("utf-8", "replace")


def time_tag(now: float | None = None) -> bytes:
    """The IRCv3 ``server-time`` tag (``@time=YYYY-MM-DDThh:mm:ss.sssZ ``) for ``now`` (unix s)."""
    now = time.time() if now is None else now
    millis = int(now * 1000) % 1000
    return ("@time=" + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}Z ").encode("ascii")
