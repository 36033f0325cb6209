"""Shared helpers of the multiplayer, spectating and tournament tests (no tests here).

Match logic runs synchronously inside the poll that carries the packet, so once ``a.send(...)``
has returned, every packet caused by it is already queued for every receiver: a single poll of
a receiver shows all of them, and "X receives nothing" is checked by polling X once.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from tests import client as C

# server -> client packets of multiplayer and spectating (what "X ⟵ ∅" is about)
MP_IDS = frozenset({
    C.MATCH_UPDATE, C.MATCH_NEW, C.MATCH_DISPOSE, C.MATCH_JOIN_SUCCESS, C.MATCH_JOIN_FAIL, C.MATCH_START,
    C.MATCH_SCORE_UPDATE, C.MATCH_TRANSFER_HOST, C.MATCH_ALL_PLAYERS_LOADED, C.MATCH_PLAYER_FAILED,
    C.MATCH_COMPLETE, C.MATCH_SKIP, C.MATCH_PLAYER_SKIPPED, C.MATCH_INVITE, C.MATCH_CHANGE_PASSWORD,
    C.MATCH_ABORT, C.SPECTATOR_JOINED, C.SPECTATOR_LEFT, C.SPECTATE_FRAMES, C.SPECTATOR_CANT_SPECTATE,
    C.FELLOW_SPECTATOR_JOINED, C.FELLOW_SPECTATOR_LEFT,
})

OPEN, LOCKED, NOT_READY, READY, NO_MAP, PLAYING = 1, 2, 4, 8, 16, 32
SETUP_STATUSES = [NOT_READY] + [OPEN] * 7 + [LOCKED] * 8


def mp(packets: Iterable[C.Packet]) -> list[C.Packet]:
    """Only the multiplayer/spectator packets, plus 64/66 for the runtime channels."""
    out = []
    for p in packets:
        if p.id in MP_IDS:
            out.append(p)
        elif p.id in (C.CHANNEL_JOIN_SUCCESS, C.CHANNEL_KICKED) and p.value in ("#multiplayer", "#spectator"):
            out.append(p)
    return out


def nothing(client: C.BanchoClient) -> list[C.Packet]:
    """Poll once; assert no multiplayer/spectator packet arrived; return what did."""
    packets = client.poll()
    client.inbox.clear()
    got = mp(packets)
    assert not got, f"{client!r} should receive nothing, got {got!r}"
    return packets


def updates(packets: Iterable[C.Packet], match_id: int | None = None) -> list:
    return [p.value for p in packets if p.id == C.MATCH_UPDATE and (match_id is None or p.value.id == match_id)]


def update_packets(packets: Iterable[C.Packet], match_id: int | None = None) -> list[C.Packet]:
    return [p for p in packets if p.id == C.MATCH_UPDATE and (match_id is None or p.value.id == match_id)]


def last_update(packets: Iterable[C.Packet], match_id: int | None = None):
    found = updates(packets, match_id)
    assert found, f"no MATCH_UPDATE{'' if match_id is None else f' for {match_id}'} in {list(packets)!r}"
    return found[-1]


def poll_all(*clients: C.BanchoClient) -> list[list[C.Packet]]:
    """One poll per client; the inboxes are emptied."""
    out = []
    for c in clients:
        out.append(c.poll())
        c.inbox.clear()
    return out


def drain_all(*clients: C.BanchoClient) -> None:
    for c in clients:
        c.drain(rounds=1)


def has(packets: Iterable[C.Packet], packet_id: int, value=dataclasses.MISSING) -> bool:
    return any(p.id == packet_id and (value is dataclasses.MISSING or p.value == value) for p in packets)


def create(host: C.BanchoClient, password: str = "", **kw) -> tuple[int, list[C.Packet]]:
    """Host sends CREATE_MATCH (docs/rules.md §5 setup: name m, map 100, md5 aaa, mode 0, slots
    1-7 open, 8-15 locked); returns (match id, packets the host got)."""
    packets = host.send(C.match_create(C.make_match(password=password, host_id=host.user_id, **kw)))
    joined = C.of(packets, C.MATCH_JOIN_SUCCESS)
    assert joined, f"no MATCH_JOIN_SUCCESS after create: {packets!r}"
    return joined[0].value.id, packets


def join(client: C.BanchoClient, match_id: int, password: str = "") -> list[C.Packet]:
    packets = client.send(C.match_join(match_id, password))
    assert C.of(packets, C.MATCH_JOIN_SUCCESS), f"{client!r} could not join {match_id}: {packets!r}"
    return packets


def setup_match(server, players: int = 2, password: str = "", lobby: bool = False, **kw):
    """"Match M(A[,B,C…])" of docs/rules.md §5: returns (match id, [A, B, ...], L or None), all
    queues drained. L (if asked) joined the lobby before the match was created."""
    clients = [server.connect() for _ in range(players)]
    observer = None
    if lobby:
        observer = server.connect()
        observer.send(C.lobby_join())
        observer.drain(rounds=1)
    match_id, _ = create(clients[0], password, **kw)
    for c in clients[1:]:
        join(c, match_id, password)
    drain_all(*clients, *([observer] if observer else []))
    return match_id, clients, observer


def current(client: C.BanchoClient, match_id: int):
    """The newest state of match ``match_id`` that ``client`` received (26 or 36), for building
    the settings a host's client would send."""
    found = [p.value for p in client.received if p.id in (C.MATCH_UPDATE, C.MATCH_JOIN_SUCCESS)
             and p.value.id == match_id]
    assert found, f"{client!r} never saw match {match_id}"
    return found[-1]
