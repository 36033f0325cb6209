"""Write a restart snapshot with this commit's code, for the migration tests.

``python -m tests.snapshot_fixture tests/fixtures/snapshot_v<N>.bin`` builds the world of
``tests/test_handover.py`` (a match in progress with a referee, a spectator, a lobby member, a
moderated channel, queued packets, a kicked session, the password cache, /np) through the real
code paths, captures it with :func:`services.handover.capture` and writes
:func:`services.handover.encode`. Run it once per snapshot version, before the version changes,
and commit the file: the tests then check that the next versions still read it through their
migrations (docs/operations.md "Deploys without disconnects").
"""

from __future__ import annotations

import sys

from services import handover
from tests.test_handover import NOW, world


def main(path: str) -> int:
    data = handover.encode(handover.capture(world(), NOW))
    with open(path, "wb") as fh:
        fh.write(data)
    print(f"{path}: snapshot version {handover.VERSION}, {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
