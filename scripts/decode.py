#!/usr/bin/env python3
"""Look at Bancho traffic by hand: make a login body, and print the packets of a server answer.

    python scripts/decode.py login-body USER PASSWORD [VERSION]   # a login body on stdout
    python scripts/decode.py [FILE]                               # decode FILE (default stdin)

The login body is what an osu! client sends (docs/protocol.md §1.2): the name, the MD5 of the
password and a client line with made-up hardware hashes. Decoding prints one line per packet
(docs/protocol.md §6.2): id, name, payload length and the decoded value where the layout is
known, otherwise the payload in hex. Example against a local server (README, "Check it works"):

    python scripts/decode.py login-body demo 'the password' \\
        | curl -s -D - --data-binary @- http://127.0.0.1:5001/ -o reply.bin
    python scripts/decode.py reply.bin
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from constants import packets  # noqa: E402
from helpers import codec  # noqa: E402

NAMES = {value: name[2:].lower() for name, value in vars(packets).items()
         if name.startswith("S_") and isinstance(value, int)}


class Reader:
    """Sequential reader of one payload (little-endian, osu! strings)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("payload too short")
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str | None:
        marker = self.take("B")
        if marker == 0:
            return None
        if marker != 0x0B:
            raise ValueError(f"bad string marker {marker:#x}")
        length = shift = 0
        while True:
            byte = self.take("B")
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        text = self.data[self.pos:self.pos + length]
        if len(text) != length:
            raise ValueError("string longer than the payload")
        self.pos += length
        return text.decode("utf-8", "replace")


def describe(packet_id: int, payload: bytes) -> str:
    r = Reader(payload)
    if not payload:
        return ""
    if packet_id in (5, 13, 14, 22, 28, 42, 43, 57, 71, 75, 81, 86, 92, 94, 95, 103):
        return str(r.take("i"))
    if packet_id in (24, 64, 66, 76, 91, 105, 107):
        return repr(r.string())
    if packet_id in (7, 88, 100, 101):
        sender, text, target, sender_id = r.string(), r.string(), r.string(), r.take("i")
        return f"{sender!r} (id {sender_id}) -> {target!r}: {text!r}"
    if packet_id in (65, 67):
        name, topic, users = r.string(), r.string(), r.take("h")
        return f"{name!r} topic {topic!r}, {users} users"
    if packet_id in (72, 96):
        return repr(codec.read_i32_list(payload, 65535))
    if packet_id == 12:
        return f"user {r.take('i')} state {r.take('B')}"
    if packet_id == 83:
        user_id, name = r.take("i"), r.string()
        offset, country, flags = r.take("B"), r.take("B"), r.take("B")
        lon, lat, rank = r.take("f"), r.take("f"), r.take("i")
        return (f"user {user_id} {name!r}, utc{offset - 24:+d}, country index {country}, "
                f"privileges {flags & 31}, mode {flags >> 5}, rank {rank}, at {lat:.2f},{lon:.2f}")
    if packet_id == 11:
        user_id, action, text, md5 = r.take("i"), r.take("B"), r.string(), r.string()
        mods, mode, beatmap = r.take("I"), r.take("B"), r.take("i")
        ranked, acc, plays, total, rank, pp = (r.take("q"), r.take("f"), r.take("i"), r.take("q"),
                                               r.take("i"), r.take("H"))
        return (f"user {user_id} action {action} {text!r} mods {mods} mode {mode}, ranked score "
                f"{ranked}, accuracy {acc * 100:.2f}%, {plays} plays, rank {rank}, {pp} pp")
    if packet_id in (26, 27, 36, 46):
        match = codec.read_match(payload)
        return f"match {match.match_id} {match.name!r}, host {match.host_id}"
    return payload[:48].hex(" ") + (" ..." if len(payload) > 48 else "")


def decode(body: bytes) -> list[str]:
    if body[:2] == b"\x1f\x8b":  # an answer saved with its gzip encoding
        body = gzip.decompress(body)
    frames, problems = codec.read_frames(body, 65536)
    lines = []
    for packet_id, payload in frames:
        name = NAMES.get(packet_id, "unknown")
        try:
            value = describe(packet_id, bytes(payload))
        except (ValueError, struct.error, codec.PacketError) as exc:
            value = f"(undecodable: {exc}) {bytes(payload)[:48].hex(' ')}"
        lines.append(f"{packet_id:>3} {name} ({len(payload)} bytes) {value}".rstrip())
    if problems:
        lines.append(f"({problems} truncated or oversized frame(s) dropped)")
    return lines


def login_body(user: str, password: str, version: str = "b20250306") -> bytes:
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    adapters = "00-00-5E-00-53-01."
    hashes = ":".join([md5("osu!.exe"), adapters, md5(adapters), md5("install-" + user),
                       md5("disk-" + user)]) + ":"
    return f"{user}\n{md5(password)}\n{version}|0|0|{hashes}|0\n".encode()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "login-body":
        if len(argv) not in (3, 4):
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        sys.stdout.buffer.write(login_body(*argv[1:]))
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(argv) > 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if argv:
        with open(argv[0], "rb") as fh:
            body = fh.read()
    else:
        body = sys.stdin.buffer.read()
    for line in decode(body):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
