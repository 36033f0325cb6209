"""helpers/gzparts.py: a gzip member built from separately compressed pieces reads back as the
joined reply with every gzip reader, and a shared part is compressed once while it comes back."""

from __future__ import annotations

import gzip
import os
import zlib

from helpers import gzparts
from helpers.gzparts import SHARED_MIN, PartsGzip


def inflate_all_ways(data: bytes) -> bytes:
    one = gzip.decompress(data)
    reader = zlib.decompressobj(31)
    two = reader.decompress(data)
    assert reader.eof and not reader.unused_data, "one member, nothing after it"
    assert one == two == zlib.decompress(data, 47)
    return one


def test_any_mix_of_parts_reads_back(monkeypatch):
    shared = os.urandom(SHARED_MIN // 2) * 3  # compressible, above the threshold
    other = b"presence " * (SHARED_MIN // 4)
    cases = [[], [b"small"], [b"a" * 600, b"b"], [shared], [b"head", shared, b"tail"],
             [shared, other, b"x", shared], [b"", shared, b""]]
    packer = PartsGzip(1)
    for parts in cases:
        assert inflate_all_ways(packer.compress(parts)) == b"".join(parts)


def test_a_shared_part_is_compressed_once_while_it_comes_back(monkeypatch):
    calls: list[int] = []
    real = gzparts._piece

    def counting(data, level, mode):
        calls.append(len(data))
        return real(data, level, mode)

    monkeypatch.setattr(gzparts, "_piece", counting)
    block = b"\x53\x00\x00" + os.urandom(64) * 200
    packer = PartsGzip(6)
    for name in (b"alice", b"bob", b"carol"):
        assert inflate_all_ways(packer.compress([b"login of " + name, block, b"end"])) == b"login of " + name + block + b"end"
    assert calls.count(len(block)) == 1
    changed = bytes(block)[:-1] + b"!"  # a new object: compressed again
    assert inflate_all_ways(packer.compress([changed])) == changed
    assert calls.count(len(block)) == 2
    assert list(packer._pieces.values())[0][0] is changed, "only the last reply's parts are kept"
