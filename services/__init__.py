"""Shared procedures: the rules of sessions, chat, login, multiplayer, spectating, moderation,
the bot and the server's lifecycle, used by the packet handlers in :mod:`events`, the HTTP API
and the pub/sub bridge (docs/architecture.md lists the layers and their order)."""
