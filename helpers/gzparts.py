"""gzip of a reply made of parts, each large shared part compressed once.

A login reply at thousands online is mostly the token list's blocks of visible presences
(objects/tokenlist.py), the same ``bytes`` objects in every login until one of their users
changes. :class:`PartsGzip` compresses such a part once and reuses the compressed piece: one gzip
member (RFC 1952) whose deflate stream (RFC 1951) is the concatenation of independently
compressed pieces, each ended by a sync flush (an empty stored block: byte-aligned, not final)
and the last by the final block. A piece never refers back into another one, so any inflater
reads the whole as one stream; the CRC-32 and length of the trailer are those of the whole
reply (bench/README.md, issue #17).

Every compressor is sized to its input (:func:`deflate_shape`): zlib's default state (a 32 KiB
window, ``memLevel`` 8) allocates about 256 KiB, and glibc gives that back to the system at each
``free`` and faults it in again at the next compressor, about 50 us per reply on the benchmark
machine, more than deflating a 400-byte poll reply takes. :func:`gzip` is the one-shot form for
poll replies.
"""

from __future__ import annotations

import struct
import zlib
from typing import Sequence

#: parts at least this long are compressed once and cached by identity
SHARED_MIN = 4096
#: smallest window zlib's deflate takes (bits; 8 is refused for gzip and raised to 9 for zlib)
MIN_WINDOW_BITS = 9
#: bytes at the end of zlib's window a match cannot reach (zlib's MIN_LOOKAHEAD)
MIN_LOOKAHEAD = 262
#: bounds of the memLevel chosen by :func:`deflate_shape`
MIN_MEM_LEVEL, MAX_MEM_LEVEL = 4, 7
# the member header of zlib.compress(..., wbits=31): no name, no mtime, OS 3 (Unix)
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"


def deflate_shape(size: int) -> tuple[int, int]:
    """``(window bits, memLevel)`` of a compressor for ``size`` bytes: the smallest window whose
    reach (zlib matches up to 2^bits - 262 bytes back) spans the whole input, 9-15 bits (a larger
    one finds no more matches), and memLevel = bits - 6 within 4-7 (the hash table and symbol
    buffer shrink with the input; 8, the default, allocates enough that the cost comes back).
    Replies of 100 B-40 KB of chat lines and presences came out within 1 % of the default's size
    and up to 12x faster to make (bench/README.md, "fifth pass"). Source: zlib's ``deflateInit2``
    and ``MAX_DIST`` (windowBits 9-15, memLevel 1-9)."""
    bits = max(MIN_WINDOW_BITS, min(15, (size + MIN_LOOKAHEAD - 1).bit_length()))
    return bits, max(MIN_MEM_LEVEL, min(MAX_MEM_LEVEL, bits - 6))


def gzip(data: bytes, level: int) -> bytes:
    """One gzip member (RFC 1952) of ``data`` at ``level`` (1-9), from a compressor sized to it;
    any gzip reader inflates it (the window a reader keeps, 32 KiB, holds any smaller one)."""
    bits, mem_level = deflate_shape(len(data))
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + bits, mem_level)
    return compressor.compress(data) + compressor.flush()


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
            return gzip(b"".join(parts), level)
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
    """Raw deflate of ``data`` with no history, ended by ``mode`` (sync flush or finish), from a
    compressor sized to it (:func:`deflate_shape`: no piece refers further back than it holds)."""
    bits, mem_level = deflate_shape(len(data))
    compressor = zlib.compressobj(level, zlib.DEFLATED, -bits, mem_level)
    return compressor.compress(data) + compressor.flush(mode)
