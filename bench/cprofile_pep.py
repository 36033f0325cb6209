#!/usr/bin/env python3
"""Run ``pep.py`` unchanged under :mod:`cProfile`, switched on and off by the real-time
signal :data:`SIGNAL` (``SIGRTMIN + 2``; SIGUSR1/SIGUSR2/SIGHUP are the server's own) for
bench/login_cost.py ``--profile``.

The first signal starts a profile of the event-loop thread (where every login and poll
runs; the MySQL and bcrypt threads are not profiled), the next one stops it and writes the
statistics with :meth:`pstats.Stats.dump_stats` to ``$PEP_BENCH_CPROFILE``, and so on.
Executes ``pep.py`` as ``__main__`` from the working directory (the server tree).
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys

#: the toggle signal (bench/login_cost.py sends it)
SIGNAL = signal.SIGRTMIN + 2
_PROFILE: list[cProfile.Profile | None] = [None]


def _toggle(*_args) -> None:
    profile = _PROFILE[0]
    if profile is None:
        profile = cProfile.Profile()
        _PROFILE[0] = profile
        profile.enable()
        return
    profile.disable()
    _PROFILE[0] = None
    path = os.environ.get("PEP_BENCH_CPROFILE")
    if path:
        profile.dump_stats(path + ".tmp")
        os.replace(path + ".tmp", path)  # whole or absent: the bench waits for it


if __name__ == "__main__":
    signal.signal(SIGNAL, _toggle)
    repo = os.getcwd()
    sys.argv = [os.path.join(repo, "pep.py"), *sys.argv[1:]]
    sys.path.insert(0, repo)
    runpy.run_path(os.path.join(repo, "pep.py"), run_name="__main__")
