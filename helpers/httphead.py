"""A faster reading of an HTTP/1.1 request head for Tornado's ``HTTP1Connection``.

Tornado parses every header line with several regular expressions and method calls
(``HTTPHeaders.parse`` -> ``parse_line`` -> ``add``): about a quarter of the CPU of an idle
poll (bench/README.md, "fifth pass"). :func:`parse_head` checks the whole head with ONE
compiled expression that accepts a strict subset of what Tornado accepts (CRLF line ends, a
token before the colon, a value of visible characters, spaces and tabs, each name once) and
then fills the same ``HTTPHeaders`` through its public ``__setitem__``. Anything else (bare LF
line ends, repeated names, folded lines, control characters, a missing colon) goes to
Tornado's own parser, which accepts or refuses it exactly as before: no request is read
differently, only faster (``tests/test_httphead.py`` compares both on generated heads).

:class:`helpers.http1.RequestConnection` reads every request head with it and
:class:`helpers.httpfast.FastConnection` with :func:`strict_head`; both take the body framing
from :func:`plain_length` and the fast side and ``handlers/bancho.py`` the keep-alive rule from
:func:`keep_alive`. Source of the grammar: RFC 9112 §2.2, §5 and RFC 9110 §5.5 (field-name = token, field-value = visible
characters with inner SP/HTAB), which Tornado's ``httputil._ABNF`` implements.
"""

from __future__ import annotations

import re

from tornado.httputil import HTTPHeaders

#: longest ``Content-Length`` read as plain digits; a longer one is left to Tornado's reader,
#: which refuses it as too long
MAX_LENGTH_DIGITS = 18
_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE = b"Connection: Keep-Alive\r\n"

# header lines "token:value" with CRLF, then the empty line; the value's characters are
# VCHAR, obs-text, SP and HTAB (stripped of SP/HTAB at both ends, what is left is a valid
# RFC 9110 field-value)
_HEAD = re.compile(r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n")


def tornado_parse(data: bytes) -> tuple[str, HTTPHeaders]:
    """Tornado's reading of a request head (``HTTP1Connection._parse_headers``): the start line
    and the headers; raises ``tornado.httputil.HTTPInputError`` for a malformed header."""
    text = data.decode("latin1").lstrip("\r\n")
    eol = text.find("\n")
    return text[:eol].rstrip("\r"), HTTPHeaders.parse(text[eol:])


def strict_head(data: bytes) -> tuple[str, HTTPHeaders] | None:
    """``(start line, headers)`` of a request head in the strict common form (CRLF line ends,
    each name once, no control characters: the module's docstring), read in one pass; None for
    any other head (then :func:`tornado_parse` decides)."""
    text = data.decode("latin1").lstrip("\r\n")
    eol = text.find("\n")
    if eol <= 0 or text[eol - 1] != "\r":
        return None
    block = text[eol + 1:]
    if _HEAD.fullmatch(block) is None:
        return None
    headers = HTTPHeaders()
    lines = block.split("\r\n")[:-2]  # the head ends with an empty line: two '' at the end
    for line in lines:
        name, _, value = line.partition(":")
        headers[name] = value.strip(" \t")
    if len(headers) != len(lines):  # a name given twice: Tornado combines them
        return None
    return text[:eol - 1], headers


def parse_head(data: bytes) -> tuple[str, HTTPHeaders]:
    """``(start line, headers)`` of a request head (``bytes`` up to and including the empty
    line), equal to :func:`tornado_parse`'s: :func:`strict_head` when it applies, else
    :func:`tornado_parse` (which raises ``HTTPInputError`` for what it refuses)."""
    return strict_head(data) or tornado_parse(data)


def plain_length(headers: HTTPHeaders) -> int | None:
    """The body length in bytes of a request framed by one plain ``Content-Length`` (ASCII
    digits, at most :data:`MAX_LENGTH_DIGITS`) and no ``Transfer-Encoding``; None for any other
    framing (none, chunked, a list, a sign, other digits), which Tornado's readers accept or
    refuse. Source: RFC 9112 §6.3."""
    length = headers.get("Content-Length")
    if (length is None or not (length.isascii() and length.isdigit() and len(length) <= MAX_LENGTH_DIGITS)
            or "Transfer-Encoding" in headers):
        return None
    return int(length)


def keep_alive(version: str, headers: HTTPHeaders) -> tuple[bool, bytes]:
    """``(stays open, Connection header line of the reply)`` for a request of HTTP ``version``
    ("HTTP/1.1" or "HTTP/1.0") with a body length: HTTP/1.1 stays open unless ``Connection:
    close`` (the reply then says ``Connection: close``), HTTP/1.0 only with ``Connection:
    keep-alive`` (the reply then says ``Connection: Keep-Alive``); the line is ``b""`` when
    there is nothing to say. Source: RFC 9112 §9.3, Tornado's ``_can_keep_alive`` and
    ``write_headers``."""
    connection = headers.get("Connection")
    if version == "HTTP/1.1":
        if connection is not None and connection.lower() == "close":
            return False, _CLOSE
        return True, b""
    if connection is not None and connection.lower() == "keep-alive":
        return True, _KEEP_ALIVE
    return False, b""
