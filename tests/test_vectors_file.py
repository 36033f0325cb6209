"""The committed codec vectors are exactly what scripts/gen_vectors.py makes from the pinned chio.

tests/test_codec.py compares our codec with ``tests/vectors/chio_b20250306.json``; this test
regenerates that file in memory and fails when it drifted (an edited file, a changed generator
or another chio version), so the reference cannot silently change under the codec tests.
"""

from __future__ import annotations

import importlib.util
import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "gen_vectors.py")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_vectors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_equal_a_fresh_generation():
    gen = _generator()
    with open(gen.OUTPUT, encoding="utf-8") as fh:
        committed = fh.read()
    fresh = gen.render()
    assert committed == fresh, "tests/vectors is out of date: run python scripts/gen_vectors.py"


def test_vectors_cover_both_directions_and_unique_labels():
    gen = _generator()
    vectors = json.loads(gen.render())["vectors"]
    labels = [v["label"] for v in vectors]
    assert len(labels) == len(set(labels))
    directions = {v["direction"] for v in vectors}
    assert directions == {"server_to_client", "client_to_server"}
    for v in vectors:
        data = bytes.fromhex(v["hex"])
        assert len(data) >= 7, v["label"]
        if v["packet_id"] >= 0:
            assert int.from_bytes(data[:2], "little") == v["packet_id"], v["label"]
            assert int.from_bytes(data[3:7], "little") == len(data) - 7, v["label"]


def test_check_mode_detects_drift(tmp_path, monkeypatch):
    gen = _generator()
    stale = tmp_path / "vectors.json"
    stale.write_text(gen.render().replace('"login reply, user id 1000"', '"renamed"'))
    monkeypatch.setattr(gen, "OUTPUT", str(stale))
    assert gen.main(["--check"]) == 1
    stale.write_text(gen.render())
    assert gen.main(["--check"]) == 0
