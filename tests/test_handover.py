"""The restart snapshot (services/handover.py, docs/operations.md "Deploys without disconnects"):
a round trip keeps the world, and corrupt, truncated, oversized, foreign or hostile snapshots
are refused whole (nothing applied, never an exception out of ``restore``)."""

from __future__ import annotations

import copy
import json
import random
import time
import zlib

import pytest

from helpers import codec
from objects.match import Scrim, scrim_key_user
from objects.snapshot import SnapshotError
from services import channels, handover, multiplayer as mpl, session, spectate
from services.commands import mp as mp_commands
from services.commands import np as np_commands
from tests.test_match_random import BOT_ID, login, make_state

# a fixed "now" after every monotonic time the world holds, so ages are exact
NOW = time.monotonic() + 3600.0


def world():
    """Five users: a match in progress (2 seated, one referee), a spectator, a lobby member,
    a moderated channel, queued packets, a kicked session, the password cache and /np."""
    state = make_state()
    users = [login(state, 100 + i) for i in range(6)]
    a, b, c, d, e, f = users
    osu = state.channels.get("#osu")
    for token in (a, b, c):
        channels.join_channel(state, token, osu)
    osu.moderated = True
    match = mpl.create_match(state, a, "round trip", "secret", beatmap_id=75, beatmap_md5="a" * 32)
    mpl.join(state, b, match, "secret")
    mp_commands.referees(state, match).add(c.user_id)
    # bancho.py's scrim (one point each, then a tie), a loaded mappool and a banned pick
    match.scrim = Scrim(2)  # bo3
    match.scrim.points.update({scrim_key_user(100): 1, scrim_key_user(101): 1})
    match.scrim.names.update({scrim_key_user(100): "user100", scrim_key_user(101): "user101"})
    match.scrim.winners.extend([scrim_key_user(100), scrim_key_user(101), None])
    match.pool = (7, "owc-qf")
    match.bans.update({(8, 2), (0, 1)})
    mpl.set_ready(state, a, True)
    mpl.set_ready(state, b, True)
    assert mpl.start(state, match)
    spectate.start_spectating(state, d, c.user_id)
    state.lobby.add(e)
    e.in_lobby = True
    b.away_message = "brb"
    b.tell_away(a.user_id)
    a.add_friend(101)
    a.add_friend(102)
    a.blocked = {104}
    a.spam_count = 3
    a.spam_window_start = NOW - 2
    a.enqueue(codec.notification("undelivered private message"))
    session.kick(state, f, "bye")
    state.password_cache[100] = ("0" * 32, "$2b$12$" + "x" * 53)
    state.verified["100"] = 1
    np_commands.set_np(state, c, np_commands.NowPlaying(75, 8, 0.99))
    return state


def strip(snap: dict) -> dict:
    out = copy.deepcopy(snap)
    out.pop("written")
    return out


def roundtrip(state):
    snap = handover.capture(state, NOW)
    fresh = make_state()
    plan = handover.build(handover.decode(handover.encode(snap)), fresh.cfg, NOW)
    plan.apply(fresh, NOW)
    return snap, fresh


def test_round_trip_keeps_the_world():
    state = world()
    snap, fresh = roundtrip(state)
    assert strip(handover.capture(fresh, NOW)) == strip(snap)
    # spot checks on the live objects
    match = next(iter(fresh.matches))
    a = fresh.tokens.get(snap["tokens"][0]["token"])
    assert match.host is a and match.in_progress and match.password == "secret"
    assert [s.token.user_id for s in match.slots if s.token is not None] == [100, 101]
    assert mp_commands.referees(fresh, match) == {102}
    spectator = fresh.tokens.user(103)
    assert spectator.spectating is fresh.tokens.user(102)
    assert fresh.channels.get("#osu").moderated
    assert fresh.channels.get("#osu").members.members.keys() >= {a.token}
    assert fresh.bot in fresh.channels.get(f"#spect_{102}").members
    assert b"undelivered private message" in a.drain()
    assert len(fresh.kicked) == 1 and fresh.tokens.user(105) is None
    assert fresh.password_cache[100][0] == "0" * 32
    assert np_commands.get_np(fresh.tokens.user(102)).mods == 8
    assert a.spam_window_start == NOW - 2 and a.last_seen == pytest.approx(state.tokens.user(100).last_seen)
    assert a.blocked == {104}
    # bancho.py's scrim, mappool and bans
    assert match.scrim.active and match.scrim.winning_points == 2
    assert match.scrim.points == {"user:100": 1, "user:101": 1}
    assert match.scrim.names["user:101"] == "user101" and match.scrim.winners == ["user:100", "user:101", None]
    assert match.pool == (7, "owc-qf") and match.bans == {(8, 2), (0, 1)}


def test_gone_permanent_channel_is_left_out():
    state = world()
    snap = handover.capture(state, NOW)
    snap["channels"].append({"name": "#gone", "description": "", "public_read": True, "public_write": True,
                             "temp": False, "hidden": False, "moderated": False,
                             "members": [snap["tokens"][0]["token"]]})
    snap["tokens"][0]["channels"].append("#gone")
    fresh = make_state()
    handover.build(snap, fresh.cfg, NOW).apply(fresh, NOW)
    assert fresh.channels.get("#gone") is None
    assert "#gone" not in fresh.tokens.get(snap["tokens"][0]["token"]).channels


# ---------------------------------------------------------------------------------------------
# refused whole
# ---------------------------------------------------------------------------------------------
def unchanged_after(data) -> None:
    fresh = make_state()
    before = (len(fresh.tokens), len(fresh.channels), len(fresh.matches), len(fresh.password_cache))
    assert handover.restore(fresh, data, "test") is None
    assert (len(fresh.tokens), len(fresh.channels), len(fresh.matches), len(fresh.password_cache)) == before
    assert fresh.tokens.user(100) is None


def test_corrupt_truncated_and_foreign_bytes_are_ignored():
    data = handover.encode(handover.capture(world(), NOW))
    rng = random.Random(7)
    cases = [b"", b"garbage", data[:-1], data[: len(data) // 2], handover.MAGIC, data[len(handover.MAGIC):],
             handover.MAGIC + zlib.compress(b"[1, 2]"), handover.MAGIC + zlib.compress(b"{\"format\": 1}"),
             handover.MAGIC + zlib.compress(b"not json"), handover.MAGIC + zlib.compress(b"{\"a\": NaN}")]
    for _ in range(40):
        flipped = bytearray(data)
        index = rng.randrange(len(handover.MAGIC), len(flipped))
        flipped[index] ^= 1 << rng.randrange(8)
        cases.append(bytes(flipped))
    for case in cases:
        unchanged_after(case)


def test_decompression_bomb_and_size_are_bounded():
    bomb = handover.MAGIC + zlib.compress(b" " * (8 << 20))
    with pytest.raises(SnapshotError, match="decompressed"):
        handover.decode(bomb, max_json=1 << 20)
    with pytest.raises(SnapshotError, match="limit"):
        handover.decode(handover.MAGIC + b"x" * (handover.MAX_STORED + 1))


def test_newer_version_unknown_version_and_other_stack_are_refused():
    snap = handover.capture(world(), NOW)
    newer = dict(snap, version=handover.VERSION + 1)
    with pytest.raises(SnapshotError, match="newer"):
        handover.decode(handover.encode(newer))
    for bad in (0, -1, "1", None, True):
        with pytest.raises(SnapshotError):
            handover.decode(handover.encode(dict(snap, version=bad)))
    with pytest.raises(SnapshotError, match="another stack"):
        handover.build(dict(snap, bot_id=BOT_ID + 1), make_state().cfg, NOW)
    with pytest.raises(SnapshotError, match="another stack"):
        handover.build(dict(snap, flavour="ripple"), make_state().cfg, NOW)


def mutations(snap: dict):
    """(description, mutated snapshot) pairs that must each be refused."""
    t0 = snap["tokens"][0]["token"]
    m0 = snap["matches"][0]

    def change(path, value):
        out = copy.deepcopy(snap)
        node = out
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return out

    yield "token string not a uuid", change(["tokens", 0, "token"], "../../etc")
    yield "user id a string", change(["tokens", 0, "user_id"], "100")
    yield "user id a bool", change(["tokens", 0, "user_id"], True)
    yield "missing field", change(["tokens", 0, "privileges"], KeyError)
    yield "huge username", change(["tokens", 0, "username"], "x" * 10_000)
    yield "negative age", change(["tokens", 0, "last_seen_age"], -5)
    yield "queue not base64", change(["tokens", 0, "queue"], "***")
    yield "accuracy out of range", change(["tokens", 0, "accuracy"], 7)
    yield "duplicate token", change(["tokens", 1, "token"], t0)
    yield "the bot as a session", change(["tokens", 0, "user_id"], BOT_ID)
    yield "spectating unknown", change(["tokens", 0, "spectating"], "00000000-0000-0000-0000-000000000000")
    yield "kicked unknown", change(["kicked"], [{"token": "00000000-0000-0000-0000-000000000000", "age": 1}])
    yield "channel member unknown", change(["channels", 0, "members"], ["00000000-0000-0000-0000-000000000000"])
    yield "channel name", change(["channels", 0, "name"], "osu")
    yield "lobby unknown", change(["lobby"], ["00000000-0000-0000-0000-000000000000"])
    yield "slot count", change(["matches", 0, "slots"], m0["slots"][:3])
    yield "slot status", change(["matches", 0, "slots", 0, "status"], 3)
    yield "occupied without token", change(["matches", 0, "slots", 0, "token"], None)
    yield "host not seated", change(["matches", 0, "host"], snap["tokens"][3]["token"])
    yield "match id range", change(["matches", 0, "id"], 70000)
    yield "seated token elsewhere", change(["tokens", 0, "match_id"], 9)
    yield "referees of unknown match", change(["referees"], {"999": [1]})
    yield "password cache shape", change(["password_cache"], [[1, 2]])
    yield "verified key", change(["verified"], {"abc": 1})
    yield "tokens not a list", change(["tokens"], {"a": 1})
    yield "now playing shape", change(["now_playing"], [["x", 1, 2, 3]])
    yield "scrim winning points", change(["matches", 0, "scrim", "winning_points"], 9)
    yield "scrim key", change(["matches", 0, "scrim", "points", 0, 0], "team:3")
    yield "scrim key twice", change(["matches", 0, "scrim", "points", 1, 0], "user:100")
    yield "scrim points", change(["matches", 0, "scrim", "points", 0, 1], 16)
    yield "scrim winner without points", change(["matches", 0, "scrim", "winners"], ["user:5"])
    yield "scrim winners bound", change(["matches", 0, "scrim", "winners"], [None] * 65)
    yield "pool name", change(["matches", 0, "pool", "name"], "x" * 17)
    yield "pool id", change(["matches", 0, "pool", "id"], 0)
    yield "ban slot", change(["matches", 0, "bans", 0, 1], 100)
    yield "ban twice", change(["matches", 0, "bans"], [[8, 2], [8, 2]])
    yield "bans without a pool", change(["matches", 0, "pool"], None)
    yield "bans missing", change(["matches", 0, "bans"], KeyError)


def test_hostile_records_are_refused_and_nothing_is_applied():
    snap = handover.capture(world(), NOW)
    for what, bad in mutations(snap):
        fresh = make_state()
        with pytest.raises(SnapshotError):
            handover.build(bad, fresh.cfg, NOW)
        unchanged_after(handover.encode(bad))


def test_deep_nesting_is_refused_without_crashing():
    data = handover.MAGIC + zlib.compress(b"[" * 200_000 + b"]" * 200_000)
    unchanged_after(data)


def test_capture_is_json_only():
    snap = handover.capture(world(), NOW)
    assert json.loads(json.dumps(snap)) == snap


# ---------------------------------------------------------------------------------------------
# versions: the snapshot written by the version-1 code (tests/snapshot_fixture.py) is read
# through the migrations
# ---------------------------------------------------------------------------------------------
FIXTURE_V1 = __import__("pathlib").Path(__file__).parent / "fixtures" / "snapshot_v1.bin"
FIXTURE_V2 = __import__("pathlib").Path(__file__).parent / "fixtures" / "snapshot_v2.bin"


def test_version_1_snapshot_is_migrated_and_applied():
    data = FIXTURE_V1.read_bytes()
    raw = json.loads(zlib.decompress(data[len(handover.MAGIC):]))
    assert raw["version"] == 1 and "countdowns" not in raw
    snap = handover.decode(data)
    assert snap["version"] == handover.VERSION and snap["countdowns"] == []
    fresh = make_state()
    assert handover.restore(fresh, data, "fixture") == 5
    match = next(iter(fresh.matches))
    host = fresh.tokens.user(100)
    assert match.host is host and match.in_progress
    assert mp_commands.referees(fresh, match) == {102}
    assert fresh.tokens.user(103).spectating is fresh.tokens.user(102)
    assert b"undelivered private message" in host.drain()
    # the world it describes is the one the current code captures (modulo what v2 added)
    again = handover.capture(fresh, NOW)
    assert again["countdowns"] == []
    assert len(again["tokens"]) == len(raw["tokens"])


def test_version_2_fixture_is_migrated_and_applied():
    """tests/fixtures/snapshot_v2.bin was written by the version-2 code (tests/snapshot_fixture.py):
    its match comes back in progress with its referee and without scrim, pool or bans."""
    data = FIXTURE_V2.read_bytes()
    raw = json.loads(zlib.decompress(data[len(handover.MAGIC):]))
    assert raw["version"] == 2 and "scrim" not in raw["matches"][0]
    fresh = make_state()
    assert handover.restore(fresh, data, "fixture") == 5
    match = next(iter(fresh.matches))
    assert match.in_progress and mp_commands.referees(fresh, match) == {102}
    assert match.scrim is None and match.pool is None and match.bans == set()
    again = handover.capture(fresh, NOW)
    assert again["matches"][0]["scrim"] is None and again["matches"][0]["bans"] == []


def test_version_2_snapshot_gets_no_scrims_pools_or_bans():
    """A version-2 snapshot (no ``scrim``/``pool``/``bans`` in its matches) is migrated: its
    matches come back without them; a match record that is no object is still refused."""
    snap = handover.capture(world(), NOW)
    old = copy.deepcopy(snap)
    old["version"] = 2
    for record in old["matches"]:
        for key in ("scrim", "pool", "bans"):
            del record[key]
    migrated = handover.decode(handover.encode(old))
    assert migrated["version"] == handover.VERSION
    assert [(r["scrim"], r["pool"], r["bans"]) for r in migrated["matches"]] == [(None, None, [])]
    fresh = make_state()
    assert handover.restore(fresh, handover.encode(old), "v2") == 5
    match = next(iter(fresh.matches))
    assert match.scrim is None and match.pool is None and match.bans == set() and match.in_progress
    broken = dict(old, matches=["not a match"])
    with pytest.raises(SnapshotError):
        handover.build(handover.decode(handover.encode(broken)), make_state().cfg, NOW)


def test_restored_scrim_keeps_its_points():
    """The restored state keeps the points: the bot's scrim referee listens again, so the
    next round's point adds to the restored ones (services/commands/banchopy.py)."""
    from services.commands import banchopy

    state = world()
    _, fresh = roundtrip(state)
    assert any(isinstance(x, banchopy.ScrimReferee) for x in fresh.match_listeners)
    match = next(iter(fresh.matches))
    for slot in match.slots:
        if slot.token is not None:
            slot.completed = True
            slot.score = 900 if slot.token.user_id == 101 else 100
    lines = banchopy.score_round(match, match.scrim)
    assert lines == ["user101 takes the point! (900 [Match avg. 500])", "user101 takes the match! Congratulations!"]
    assert not match.scrim.active and match.scrim.points == {} and match.bans == set()
    # no scrim running: a restore adds no listener
    quiet = world()
    next(iter(quiet.matches)).scrim = None
    _, plain = roundtrip(quiet)
    assert not any(isinstance(x, banchopy.ScrimReferee) for x in plain.match_listeners)


def test_without_its_migration_an_old_version_is_refused(monkeypatch):
    monkeypatch.delitem(handover.MIGRATIONS, 1)
    with pytest.raises(SnapshotError, match="no migration from snapshot version 1"):
        handover.decode(FIXTURE_V1.read_bytes())
    unchanged_after(FIXTURE_V1.read_bytes())


def test_countdown_is_kept_and_runs_on():
    import asyncio

    from services.commands import Context, find

    async def scenario():
        state = world()
        match = mpl.create_match(state, None, "countdown")
        referee = state.tokens.user(102)
        ctx = Context(state, referee, match.channel_name, "!mp start 30", find("!mp start 30"))
        assert mp_commands._start(ctx, match, ["30"]).startswith("Match starts in 30 seconds")
        left, force, by = mp_commands.countdown_of(match)
        assert 29 <= left <= 30 and not force and by is referee
        snap = handover.capture(state)
        mp_commands.cancel_countdown(match)
        assert snap["countdowns"] == [{"match": match.id, "left": pytest.approx(left, abs=0.5), "force": False,
                                       "by": referee.token}]
        # the snapshot belongs to a new state (a new process); the registry is module-wide
        # today, so the old match's entry is gone before the new one is restored
        fresh = make_state()
        assert handover.restore(fresh, handover.encode(snap), "test") == 5
        restored = fresh.matches.get(match.id)
        assert restored.starting
        left2, _, by2 = mp_commands.countdown_of(restored)
        assert 29 <= left2 <= 30 and by2 is fresh.tokens.get(referee.token)
        mp_commands.cancel_countdown(restored)
        await asyncio.sleep(0)

    asyncio.run(scenario())


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, path + (key,))
    elif isinstance(node, list) and node:
        for index, value in enumerate(node):
            yield from _leaves(value, path + (index,))
    else:
        yield path


def test_every_field_with_a_wrong_value_is_refused_or_harmless():
    """Each leaf of a real snapshot replaced by values of other types and out-of-range values:
    ``build`` raises SnapshotError or accepts; no other exception, ever (a snapshot is outside
    input)."""
    snap = handover.capture(world(), NOW)
    cfg = make_state().cfg
    replacements = [None, True, -1, 2**70, 1.5, float("inf"), "", "x" * 70_000, [], {}, [None], {"a": 1}]
    refused = 0
    for path in _leaves(snap):
        for value in replacements:
            bad = copy.deepcopy(snap)
            node = bad
            for key in path[:-1]:
                node = node[key]
            if not path:
                continue
            node[path[-1]] = value
            try:
                handover.build(bad, cfg, NOW)
            except SnapshotError:
                refused += 1
    assert refused > 1000


def test_file_store_is_private_used_once_and_bounded_by_the_window(tmp_path):
    import asyncio
    import os
    import stat

    from helpers import config
    from tests.fakes import fake_state

    path = tmp_path / "snapshot"
    cfg = config.load(None, environ={"PEP_SESSIONS_HANDOVER_FILE": str(path), "PEP_SESSIONS_HANDOVER_WINDOW": "60"})
    state = fake_state(cfg)
    data = handover.encode(handover.capture(world(), NOW))

    async def scenario():
        assert await handover.store(state, data) == f"file {path}"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert await handover.take_stored(state) == (data, f"file {path}")
        assert not path.exists()
        assert await handover.take_stored(state) == (None, f"file {path}")
        await handover.store(state, data)
        old = time.time() - 61
        os.utime(path, (old, old))
        assert (await handover.take_stored(state))[0] is None  # older than the window

    asyncio.run(scenario())
    state.cpu_pool.shutdown(wait=False)


def _scrim_record(points, winners=(), winning_points=2, active=True):
    from objects.snapshot import Record

    return Record({"winning_points": winning_points, "active": active, "points": points,
                   "winners": list(winners)}, "scrim")


def test_scrim_record_fields_read_at_their_bounds():
    """A scrim record's keys, points (0-15), names (up to 64 characters) and winners are read
    at their bounds and refused just past them, each refusal naming the field."""
    good = [["team:1", 0, ""], ["team:2", 15, "Blue"], ["user:1234567890", 3, "n" * 64], ["user:7", 1, "x"]]
    scrim = Scrim.from_snapshot(_scrim_record(good, ["team:1", None, "user:7"], winning_points=8, active=False))
    assert scrim.points == {"team:1": 0, "team:2": 15, "user:1234567890": 3, "user:7": 1}
    assert scrim.names == {"team:2": "Blue", "user:1234567890": "n" * 64, "user:7": "x"}
    assert scrim.winners == ["team:1", None, "user:7"] and scrim.winning_points == 8 and scrim.active is False
    assert Scrim.from_snapshot(_scrim_record(good)).active is True
    bad_items = [
        [5, 1, ""], ["team:0", 1, ""], ["team:3", 1, ""], ["team:", 1, ""], ["team:11", 1, ""],
        ["user:", 1, ""], ["user:0", 1, ""], ["user:012", 1, ""], ["user:12345678901", 1, ""],
        ["user:1a", 1, ""], ["usr:1", 1, ""], ["user:1:2", 1, ""], ["1", 1, ""],
        ["user:8", 16, ""], ["user:8", -1, ""], ["user:8", True, ""], ["user:8", "1", ""],
        ["user:8", 1, "n" * 65], ["user:8", 1, None], ["user:8", 1], ["user:8", 1, "", 0], ("user:8", 1, ""),
        ["user:7", 2, "again"],
    ]
    for item in bad_items:
        with pytest.raises(SnapshotError) as err:
            Scrim.from_snapshot(_scrim_record(good + [item]))
        assert str(err.value) == "scrim.points[4]: expected [key, points 0-15, name], each key once", item
    for winners in (["user:8"], [7], ["team:1", "USER:7"]):
        with pytest.raises(SnapshotError) as err:
            Scrim.from_snapshot(_scrim_record(good, winners))
        assert str(err.value) == "scrim.winners: a winner without points", winners


def test_scrim_remembers_the_last_64_round_winners():
    scrim = Scrim(2)
    for i in range(70):
        scrim.record(None if i % 5 == 0 else f"user:{i + 1}")
    assert len(scrim.winners) == 64
    assert scrim.winners == [None if i % 5 == 0 else f"user:{i + 1}" for i in range(6, 70)]


def test_bad_slot_records_are_refused_with_the_field_named():
    """A slot's status is first read as a byte (0-255), then as one of the slot statuses; its
    token must be a known session, in an occupied slot, seated once, in this match."""
    snap = handover.capture(world(), NOW)
    m0 = snap["matches"][0]
    occupied = [i for i, s in enumerate(m0["slots"]) if s["token"] is not None]
    empty = [i for i, s in enumerate(m0["slots"]) if s["token"] is None and s["status"] == 1]
    assert len(occupied) >= 2 and empty
    where = f"snapshot.matches[0].slots[{occupied[0]}]"

    def refused(change_slots) -> str:
        bad = copy.deepcopy(snap)
        change_slots(bad["matches"][0]["slots"])
        with pytest.raises(SnapshotError) as err:
            handover.build(bad, make_state().cfg, NOW)
        return str(err.value)

    for status in (-1, 256):
        assert refused(lambda s: s[occupied[0]].update(status=status)) == \
            f"{where}.status: expected an integer in 0..255", status
    for status in (0, 3):
        assert refused(lambda s: s[occupied[0]].update(status=status)) == f"{where}.status: not a slot status"
    token_error = "token: unknown session, empty status, seated twice or in another match"
    assert refused(lambda s: s[occupied[0]].update(token="00000000-0000-0000-0000-000000000000")) == \
        f"{where}.{token_error}"

    def to_open_slot(s):  # the last player's token moved to an open slot, seated nowhere else
        s[empty[0]]["token"], s[occupied[-1]]["token"] = s[occupied[-1]]["token"], None
        s[occupied[-1]]["status"] = 1

    assert refused(to_open_slot) == f"snapshot.matches[0].slots[{empty[0]}].{token_error}"
    second = occupied[1]
    assert refused(lambda s: s[second].update(token=s[occupied[0]]["token"])) == \
        f"snapshot.matches[0].slots[{second}].{token_error}"  # seated twice


def test_bad_match_records_are_refused_with_the_field_named():
    """The match-level references: the host must be seated, slots play only in a match in
    progress, observers are known sessions (at most 4096)."""
    snap = handover.capture(world(), NOW)
    m0 = snap["matches"][0]
    seated = {s["token"] for s in m0["slots"] if s["token"] is not None}
    outsider = next(t["token"] for t in snap["tokens"] if t["token"] not in seated)
    unknown = "00000000-0000-0000-0000-000000000000"

    def build(**fields):
        bad = copy.deepcopy(snap)
        bad["matches"][0].update(fields)
        return handover.build(bad, make_state().cfg, NOW)

    def refused(**fields) -> str:
        with pytest.raises(SnapshotError) as err:
            build(**fields)
        return str(err.value)

    assert refused(host=outsider) == "snapshot.matches[0].host: the host is not seated in the match"
    assert refused(in_progress=False) == "snapshot.matches[0]: a slot plays while the match is not in progress"
    assert refused(observers=[unknown]) == "snapshot.matches[0].observers: unknown session"
    assert refused(observers=[unknown] * 4097).startswith("snapshot.matches[0].observers: expected an array of at most 4096")
    plan = build(observers=[outsider])
    [match] = plan.matches
    assert list(match.observers) == [outsider] and match.observers[outsider].token == outsider


def test_match_times_are_written_as_ages_never_negative():
    from objects.match import match_to_snapshot

    [match] = list(world().matches)
    match.created, match.empty_since, match.round_started, match.first_complete = (
        NOW - 0.5, NOW - 0.25, NOW - 0.75, NOW - 0.125)
    rec = match_to_snapshot(match, NOW)
    assert (rec["created_age"], rec["empty_age"], rec["round_age"], rec["first_complete_age"]) == pytest.approx(
        (0.5, 0.25, 0.75, 0.125), abs=1e-6)
    # times after ``now`` (another clock) count as age 0; unset ones as null
    match.created, match.empty_since, match.round_started, match.first_complete = NOW + 9, NOW + 9, NOW + 9, NOW + 9
    rec = match_to_snapshot(match, NOW)
    assert (rec["created_age"], rec["empty_age"], rec["round_age"], rec["first_complete_age"]) == (0.0, 0.0, 0.0, 0.0)
    match.empty_since, match.round_started, match.first_complete = None, 0.0, None
    rec = match_to_snapshot(match, NOW)
    assert (rec["empty_age"], rec["round_age"], rec["first_complete_age"]) == (None, None, None)


def test_pool_and_ban_records_read_at_their_bounds():
    """A loaded mappool's id (1 .. 2**31-1) and name (not empty), and the banned picks
    ([mods 0 .. 2**31-1, slot 0-99], each once, only with a pool)."""
    snap = handover.capture(world(), NOW)

    def build(**fields):
        bad = copy.deepcopy(snap)
        bad["matches"][0].update(fields)
        [match] = handover.build(bad, make_state().cfg, NOW).matches
        return match

    def refused(**fields) -> str:
        with pytest.raises(SnapshotError) as err:
            build(**fields)
        return str(err.value)

    where = "snapshot.matches[0]"
    for pool_id in (1, 2**31 - 1):
        assert build(pool={"id": pool_id, "name": "p"}).pool == (pool_id, "p")
    for pool_id in (0, 2**31):
        assert refused(pool={"id": pool_id, "name": "p"}) == f"{where}.pool.id: expected an integer in 1..2147483647"
    assert refused(pool={"id": 1, "name": ""}) == f"{where}.pool.name: empty"
    top = 2**31 - 1  # mods are read up to the i32 maximum
    assert build(bans=[[0, 0], [top, 99], [top, 0]]).bans == {(0, 0), (top, 99), (top, 0)}
    for bad in ([0, 100], [0, -1], [top + 1, 0], [-1, 0], [0, 1, 5], [0], "ab", [0.0, 1], [0, True]):
        assert refused(bans=[[1, 1], bad]) == f"{where}.bans[1]: expected [mods, slot 0-99], each pick once", bad
    assert refused(bans=[[1, 1], [1, 1]]) == f"{where}.bans[1]: expected [mods, slot 0-99], each pick once"
    assert refused(pool=None, bans=[[1, 1]]) == f"{where}.bans: banned picks without a loaded mappool"
    assert build(pool=None, bans=[]).bans == set()


def test_scrim_to_snapshot_and_the_smallest_scrim():
    scrim = Scrim(1)  # first to one point
    scrim.points.update({"team:1": 1, "user:5": 0})
    scrim.names["user:5"] = "Five"
    scrim.record("team:1")
    rec = scrim.to_snapshot()
    assert rec == {"winning_points": 1, "active": True, "points": [["team:1", 1, ""], ["user:5", 0, "Five"]],
                   "winners": ["team:1"]}
    again = Scrim.from_snapshot(_scrim_record(rec["points"], rec["winners"], winning_points=1))
    assert (again.winning_points, again.points, again.names, again.winners) == (
        1, scrim.points, {"user:5": "Five"}, ["team:1"])
    for points in (0, 9):
        with pytest.raises(SnapshotError, match=r"^scrim\.winning_points: expected an integer in 1\.\.8$"):
            Scrim.from_snapshot(_scrim_record([], winning_points=points))
