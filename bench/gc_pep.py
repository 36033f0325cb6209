#!/usr/bin/env python3
"""Run ``pep.py`` unchanged with garbage-collector statistics (bench/poll.py ``--gc-stats``).

Registers a ``gc.callbacks`` hook that counts collections and their time per generation, then
executes ``pep.py`` as ``__main__`` from the working directory (the server tree). On
:data:`SIGNAL` (``SIGRTMIN + 3``; SIGUSR1 is the server's maintenance stop, SIGUSR2 its restart,
``SIGRTMIN + 2`` bench/cprofile_pep.py's) and at exit the figures are written as JSON to
``$PEP_BENCH_GC_STATS``:
``{"0": [count, seconds, max_seconds], "1": [...], "2": [...], "tracked": n, "thresholds": [...]}``.
``$PEP_BENCH_GC_THRESHOLD=a,b,c`` sets ``gc.set_threshold(a, b, c)`` first, to try a setting
without touching the server code.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import runpy
import signal
import sys
import time

#: the signal that asks for the figures (bench/poll.py sends it)
SIGNAL = signal.SIGRTMIN + 3

_STATS: dict[str, list[float]] = {"0": [0, 0.0, 0.0], "1": [0, 0.0, 0.0], "2": [0, 0.0, 0.0]}
_STARTED = [0.0]


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _STARTED[0] = time.perf_counter()
        return
    spent = time.perf_counter() - _STARTED[0]
    row = _STATS[str(info["generation"])]
    row[0] += 1
    row[1] += spent
    row[2] = max(row[2], spent)


def _dump(*_args) -> None:
    path = os.environ.get("PEP_BENCH_GC_STATS")
    if path:
        data = dict(_STATS, tracked=len(gc.get_objects()), thresholds=list(gc.get_threshold()))
        with open(path + ".tmp", "w") as fh:
            json.dump(data, fh)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    if os.environ.get("PEP_BENCH_GC_THRESHOLD"):
        gc.set_threshold(*(int(x) for x in os.environ["PEP_BENCH_GC_THRESHOLD"].split(",")))
    gc.callbacks.append(_callback)
    atexit.register(_dump)
    signal.signal(SIGNAL, _dump)
    repo = os.getcwd()
    sys.argv = [os.path.join(repo, "pep.py"), *sys.argv[1:]]
    sys.path.insert(0, repo)
    runpy.run_path(os.path.join(repo, "pep.py"), run_name="__main__")
