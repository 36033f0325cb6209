"""gzip of a reply made of parts, each large shared part compressed once.

A login reply at thousands online is mostly the token list's blocks of visible presences
(objects/tokenlist.py), the same ``bytes`` objects in every login until one of their users
changes. :class:`PartsGzip` compresses such a part once and reuses the compressed piece: one gzip
member (RFC 1952) whose deflate stream (RFC 1951) is the concatenation of independently
compressed pieces, each ended by a sync flush (an empty stored block: byte-aligned, not final)
and the last by the final block. A piece never refers back into another one, so any inflater
reads the whole as one stream; the CRC-32 and length of the trailer are those of the whole
reply (bench/README.md, issue #17).
"""

from __future__ import annotations

import struct
import zlib
from typing import Sequence

#: parts at least this long are compressed once and cached by identity
SHARED_MIN = 4096
# the member header of zlib.compress(..., wbits=31): no name, no mtime, OS 3 (Unix)
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"


class PartsGzip:
    """gzip ``parts`` (immutable ``bytes``) at ``level`` (1-9); parts of at least
    :data:`SHARED_MIN` bytes are compressed once while the same object comes back.

    The cache holds only the shared parts of the last reply (and their pieces): its size is
    bounded by that reply's.
    """

    def __init__(self, level: int) -> None:
        self.level = level
        self._pieces: dict[int, tuple[bytes, bytes]] = {}  # id(part) -> (part, compressed piece)

    def compress(self, parts: Sequence[bytes]) -> bytes:
        """One gzip member holding ``b"".join(parts)``, decompressible by any gzip reader."""
        level = self.level
        if not any(len(part) >= SHARED_MIN for part in parts):
            return zlib.compress(b"".join(parts), level, 31)
        old = self._pieces
        used: dict[int, tuple[bytes, bytes]] = {}
        out = [_HEADER]
        crc = 0
        size = 0
        pending: list[bytes] = []  # small parts, compressed together up to the next shared one
        for part in parts:
            crc = zlib.crc32(part, crc)
            size += len(part)
            if len(part) < SHARED_MIN:
                pending.append(part)
                continue
            if pending:
                out.append(_piece(b"".join(pending), level, zlib.Z_SYNC_FLUSH))
                pending = []
            key = id(part)
            hit = old.get(key)
            if hit is None or hit[0] is not part:
                hit = (part, _piece(part, level, zlib.Z_SYNC_FLUSH))
            used[key] = hit
            out.append(hit[1])
        out.append(_piece(b"".join(pending), level, zlib.Z_FINISH))
        out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
        self._pieces = used
        return b"".join(out)


def _piece(data: bytes, level: int, mode: int) -> bytes:
    """Raw deflate of ``data`` with no history, ended by ``mode`` (sync flush or finish)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(mode)
