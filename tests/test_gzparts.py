"""helpers/gzparts.py: a gzip member built from separately compressed pieces reads back as the
joined reply with every gzip reader, and a shared part is compressed once while it comes back."""

from __future__ import annotations

import gzip
import os
import random
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


def test_deflate_shape_fits_the_window_to_the_input_within_zlib_bounds():
    assert gzparts.deflate_shape(0) == (9, 4) and gzparts.deflate_shape(1) == (9, 4)
    assert gzparts.deflate_shape(250) == (9, 4)  # a 512-byte window reaches 250 bytes back
    assert gzparts.deflate_shape(251) == (10, 4)
    assert gzparts.deflate_shape(4096) == (13, 7)
    assert gzparts.deflate_shape(1000) == (11, 5)
    assert gzparts.deflate_shape(2000) == (12, 6)
    assert gzparts.deflate_shape((1 << 15) - 262) == (15, 7)
    assert gzparts.deflate_shape(10 << 20) == (15, 7)  # never past zlib's 32 KiB window


def test_gzip_of_any_size_reads_back_and_is_no_larger_than_the_default():
    rng = random.Random(5)
    for size in (0, 1, 100, 511, 512, 513, 2000, 4095, 4096, 20_000, 40_000, 70_000):
        # chat-like text: repeats within a short reach, as bancho replies do
        words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(2, 9))) for _ in range(60)]
        data = b" ".join(rng.choice(words) for _ in range(size))[:size]
        packed = gzparts.gzip(data, 1)
        assert inflate_all_ways(packed) == data
        default = zlib.compress(data, 1, 31)
        assert len(packed) <= len(default) * 1.01 + 8, (size, len(packed), len(default))


def test_pieces_of_every_size_read_back_as_one_stream():
    rng = random.Random(6)
    packer = PartsGzip(1)
    parts = [bytes(rng.randrange(4) for _ in range(n)) for n in (10, SHARED_MIN, 3 * SHARED_MIN, 600, 40_000, 5)]
    assert inflate_all_ways(packer.compress(parts)) == b"".join(parts)
