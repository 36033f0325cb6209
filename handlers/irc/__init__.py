"""The IRC gateway: IRC clients (referee tools, chat bots, phones) chat with the game (docs/irc.md).

:class:`Gateway` is a service of ``state.services`` (built by ``pep.py``): it listens on
``[irc] host``:``[irc] port`` when ``[irc] enabled``, hangs off ``state.irc`` while it runs, and
closes every IRC connection when stopped. The wire format is in :mod:`handlers.irc.protocol`.
"""

from handlers.irc.gateway import Gateway

__all__ = ["Gateway"]
