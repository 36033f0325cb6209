#!/usr/bin/env python3
"""Run ``pep.py`` unchanged with the hop timestamps of bench/cluster.py's latency samples.

Wraps, before ``pep.py`` runs as ``__main__`` from the working directory (the server tree):

* ``handlers.bancho.poll``: ``req`` when a request body carries a sample marker (the sender's
  message reaches the poll code), ``reply`` when a poll's reply carries one (the receiver's
  answer is ready to be written);
* ``services.cluster.Cluster._send``: ``queued`` (the ``msg``/``pm`` event is in the outbox);
* ``redis.asyncio.Redis.publish`` (also the pipeline's): ``publish`` (the writer task hands the
  event to redis-py);
* ``services.cluster.Cluster.handle``: ``recv`` (the reader task got the event from Redis) and
  ``applied`` (the packet is in the receiver's queue);
* ``gc.callbacks``: every collection of at least 0.1 ms as ``gc``.

A sample marker is the message text bench/cluster.py sends, ``(channel|private)-<n>-<8 hex>``.
Each line of ``$PEP_BENCH_TRACE.<pid>`` is ``<hop> <marker> <ns>`` (``time.perf_counter_ns``:
CLOCK_MONOTONIC, comparable across processes) or ``gc <start ns> <end ns>``. The file is line
buffered; only requests that carry a marker pay more than one ``bytes`` search.
"""

from __future__ import annotations

import gc
import os
import re
import runpy
import sys
import time

MARKER = re.compile(rb"(?:channel|private)-\d+-[0-9a-f]{8}")
_OUT = open(f"{os.environ['PEP_BENCH_TRACE']}.{os.getpid()}", "a", buffering=1)
_GC_START = [0]


def mark(hop: str, data: bytes | str) -> None:
    """Write ``hop marker now`` for every sample marker in ``data``."""
    now = time.perf_counter_ns()
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    for found in MARKER.findall(data):
        _OUT.write(f"{hop} {found.decode()} {now}\n")


def _gc(phase: str, info: dict) -> None:
    now = time.perf_counter_ns()
    if phase == "start":
        _GC_START[0] = now
    elif now - _GC_START[0] >= 100_000:
        _OUT.write(f"gc {_GC_START[0]} {now}\n")


def install() -> None:
    """Wrap the functions listed in the module docstring."""
    import redis.asyncio
    from handlers import bancho
    from services import cluster

    poll = bancho.poll

    def traced_poll(state, token_string, body):
        if b"-" in body:
            mark("req", body)
        reply = poll(state, token_string, body)
        if b"-" in reply:
            mark("reply", reply)
        return reply

    bancho.poll = traced_poll

    send = cluster.Cluster._send

    def traced_send(self, kind, fields=None, to=None):
        send(self, kind, fields, to)
        if kind in ("msg", "pm"):
            mark("queued", fields["x"])

    cluster.Cluster._send = traced_send

    publish = redis.asyncio.Redis.publish

    def traced_publish(self, channel, message, **kwargs):
        mark("publish", message)
        return publish(self, channel, message, **kwargs)

    redis.asyncio.Redis.publish = traced_publish

    handle = cluster.Cluster.handle

    def traced_handle(self, data):
        mark("recv", data)
        handle(self, data)
        mark("applied", data)

    cluster.Cluster.handle = traced_handle
    gc.callbacks.append(_gc)


if __name__ == "__main__":
    repo = os.getcwd()
    sys.argv = [os.path.join(repo, "pep.py"), *sys.argv[1:]]
    sys.path.insert(0, repo)
    install()
    runpy.run_path(os.path.join(repo, "pep.py"), run_name="__main__")
