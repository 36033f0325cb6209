#!/usr/bin/env python3
"""Run ``pep.py`` unchanged on uvloop, for the "Tornado on uvloop" comparison of bench/poll.py.

Installs uvloop's event loop policy, then executes ``pep.py`` as ``__main__`` with the same
arguments (``asyncio.run`` in pep.py then creates a uvloop loop). The server code is not
modified. Needs uvloop importable (bench/.deps on PYTHONPATH; bench/run.sh installs it).

Usage (from the root of the server tree, which is the working directory):
``python bench/uvloop_pep.py [pep.py arguments]``
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys

import uvloop

REPO = os.getcwd()  # the server tree under test (bench/benchlib.py starts us there)

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.argv = [os.path.join(REPO, "pep.py"), *sys.argv[1:]]
    sys.path.insert(0, REPO)
    runpy.run_path(os.path.join(REPO, "pep.py"), run_name="__main__")
