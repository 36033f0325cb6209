"""The bot's command registry and dispatcher (docs/rules.md §8.2).

Every message the bot sees reaches :func:`dispatch` through ``state.bot_hooks`` (registered by
:func:`install`, which ``pep.py`` calls at start-up). A command is a
:class:`Command` declared with the :func:`command` decorator in one of the modules of this
package, loaded in the order of :data:`BUILTIN_MODULES`; an operator's own modules, listed in
``[bot] command_modules``, are loaded after them by :func:`load_configured` (``docs/commands.md``).

Dispatch rules (docs/rules.md §8.2, with the [FIX]es of the spec):

1. Messages from the bot are never matched. PMs between other users never get here.
2. The first command, in declaration order, whose trigger is the whole text or is followed by a
   space wins. Matching is case-sensitive; triggers may contain spaces (``!system restart``,
   ``\\x01ACTION is playing``).
3. A sender whose ``users.privileges`` (as held on the token) share no bit with the command's
   mask, and whom the command's extra gate (``allow``) does not let in either, gets **no reply**.
4. A command used in the wrong place (channel-only in a PM, PM-only in a channel) gets a short
   private explanation, or nothing when the command says so (``/np`` in a channel).
5. Arguments are the words after the trigger (runs of whitespace separate them). Fewer words
   than the ``<required>`` parts of the syntax, or a handler raising :class:`WrongSyntax`,
   gives ``Wrong syntax: {trigger} {syntax}``.
6. The handler's result (a string, possibly with line breaks, or a list of strings; None for
   no reply) is sent as the bot: into the channel for channel commands, by PM to the sender
   for PMs (or always by PM when the command says ``private_reply``). A handler may be a
   coroutine function: it runs with :meth:`objects.state.State.spawn` and replies when done,
   so the poll never waits.
7. A handler that raises gets a generic error reply (admins also see the exception) and the
   traceback goes to the log.

A PM to the bot that is not a command gets a short greeting (Kawata); an unknown ``!`` command
in a PM gets a pointer to ``!help``. Unknown commands in channels get nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import logging
import os
import re
import sys
import time
import types
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Union

from services import chat
from constants import privileges as privs
from helpers import codec

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.commands")

ANYWHERE = "anywhere"
CHANNEL = "channel"
PRIVATE = "private"
_WHERE = (ANYWHERE, CHANNEL, PRIVATE)

#: the stacks whose bots have a command (``Command.stacks``; the "stacks" column of docs/commands.md)
RIPPLE = "Ripple"
KAWATA = "Kawata"
REALISTIK = "RealistikOsu"
BANCHOPY = "bancho.py"
STACKS = (RIPPLE, KAWATA, REALISTIK, BANCHOPY)
#: the three Ripple-derived bots (Ripple pep.py, Kawata, RealistikOsu)
RIPPLE_LIKE = (RIPPLE, KAWATA, REALISTIK)

#: modules of this package loaded first, in this order (declaration order = matching order)
BUILTIN_MODULES = ("user", "np", "beatmaps", "staff", "misc", "jokes", "banchopy", "mp")

GENERIC_ERROR = "Sorry, something went wrong while running {trigger}. The server staff can find the details in the log."
UNKNOWN_COMMAND = "Unknown command. Type !help to see the commands you can use."
GREETING = "Hello, I'm {bot}, the server's bot! Type !help to see what I can do for you."
WRONG_PLACE_CHANNEL = "{trigger} only works in a chat channel."
WRONG_PLACE_PRIVATE = "{trigger} only works in a private message to {bot}."

Reply = Union[str, list[str], tuple[str, ...], None]
Handler = Callable[["Context"], Union[Reply, Awaitable[Reply]]]
Gate = Callable[["State", "Token", "str | None"], bool]


class WrongSyntax(Exception):
    """Raised by a handler for missing or bad arguments.

    Without a message the reply is ``Wrong syntax: {trigger} {syntax}``; with one, the message.
    """


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """One documented subcommand of a command that dispatches on its first argument (``!mp``)."""

    name: str
    syntax: str = ""
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Command:
    """One bot command.

    * ``trigger``: the text the message starts with (case-sensitive; may contain spaces).
    * ``syntax``: the arguments as shown to users: ``<required>``, ``[optional]``, ``<rest...>``.
    * ``privileges``: Ripple ``users.privileges`` mask (constants/privileges.py); 0 = everyone.
      A sender needs at least one of its bits, or to pass ``allow``.
    * ``allow``: an extra gate ``allow(state, sender, channel) -> bool`` (e.g. the referees of
      the match whose channel it is); ``allow_doc`` says in words who it lets in.
    * ``where``: :data:`ANYWHERE`, :data:`CHANNEL` or :data:`PRIVATE` (a PM to the bot).
    * ``wrong_place``: the reply when used in the wrong place (None: the generic text,
      "": no reply).
    * ``private_reply``: answer by PM even when used in a channel.
    * ``hidden``: left out of ``!help`` and the docs (aliases of a documented command).
    * ``display``: how ``!help`` and the docs name it (defaults to the trigger).
    * ``subcommands``: documented subcommands (shown in the docs).
    * ``stacks``: which of :data:`STACKS` have the command (empty: this server only, e.g. an
      operator's own command); shown in the docs.
    * ``enabled``: ``enabled(state) -> bool``, for commands a setting turns on (e.g. ``[bot]
      joke_commands``); while it says False the command does not exist (unknown, left out of
      ``!help``); ``enabled_doc`` names the setting in the docs.
    * ``handler(ctx)``: sync or async; returns the reply (see the module docstring).
    """

    trigger: str
    handler: Handler
    syntax: str = ""
    privileges: int = 0
    where: str = ANYWHERE
    description: str = ""
    effect: str = ""
    allow: Gate | None = None
    allow_doc: str = ""
    wrong_place: str | None = None
    private_reply: bool = False
    hidden: bool = False
    display: str = ""
    subcommands: tuple[Subcommand, ...] = ()
    stacks: tuple[str, ...] = ()
    module: str = ""
    enabled: Callable[["State"], bool] | None = None
    enabled_doc: str = ""

    @property
    def name(self) -> str:
        """The name shown to users (``display`` or the trigger)."""
        return self.display or self.trigger

    @property
    def usage(self) -> str:
        """``{trigger} {syntax}`` (no trailing space when there is no syntax)."""
        return f"{self.trigger} {self.syntax}".rstrip()

    @property
    def required_args(self) -> int:
        """How many words the syntax requires: its ``<...>`` parts."""
        return sum(1 for part in self.syntax.split() if part.startswith("<"))

    def matches(self, text: str) -> bool:
        """Whether ``text`` invokes this command: the trigger, then the end or a space."""
        return text == self.trigger or text.startswith(self.trigger + " ")

    def active(self, state: State) -> bool:
        """Whether the command exists on this server (its ``enabled`` setting, if any)."""
        if self.enabled is None:
            return True
        try:
            return bool(self.enabled(state))
        except Exception:
            log.exception("enabled check of %s failed", self.trigger)
            return False

    def permitted(self, state: State, sender: Token, channel: str | None) -> bool:
        """Whether ``sender`` may use the command (privilege mask or the extra gate)."""
        if not self.privileges or sender.privileges & self.privileges:
            return True
        if self.allow is not None:
            try:
                return bool(self.allow(state, sender, channel))
            except Exception:
                log.exception("privilege gate of %s failed", self.trigger)
        return False


def command(trigger: str, syntax: str = "", *, privileges: int = 0, where: str = ANYWHERE,
            description: str = "", effect: str = "", allow: Gate | None = None, allow_doc: str = "",
            wrong_place: str | None = None, private_reply: bool = False, hidden: bool = False,
            display: str = "", subcommands: Iterable[Subcommand] = (),
            stacks: Iterable[str] = (), enabled: Callable[["State"], bool] | None = None,
            enabled_doc: str = "") -> Callable[[Handler], Handler]:
    """Decorator declaring ``handler`` as the command ``trigger`` (see :class:`Command`).

    Nothing is registered anywhere: the :class:`Command` is attached to the handler (its
    ``commands`` attribute, several for aliases declared on the same function), and
    :meth:`Registry.build` collects the handlers of the command modules into the one immutable
    table. Raises ValueError for an empty trigger, an unknown ``where`` or a stack not in
    :data:`STACKS`.
    """
    if not trigger or trigger != trigger.strip():
        raise ValueError(f"bad trigger {trigger!r}")
    if where not in _WHERE:
        raise ValueError(f"{trigger}: where must be one of {_WHERE}")
    stacks = tuple(stacks)
    if any(stack not in STACKS for stack in stacks):
        raise ValueError(f"{trigger}: stacks must be among {STACKS}")

    def declare(handler: Handler) -> Handler:
        spec = Command(
            trigger=trigger, handler=handler, syntax=syntax, privileges=privileges, where=where,
            description=description, effect=effect, allow=allow, allow_doc=allow_doc,
            wrong_place=wrong_place, private_reply=private_reply, hidden=hidden, display=display,
            subcommands=tuple(subcommands), stacks=stacks, module=getattr(handler, "__module__", ""),
            enabled=enabled, enabled_doc=enabled_doc,
        )
        handler.commands = (*getattr(handler, "commands", ()), spec)  # type: ignore[attr-defined]
        return handler

    return declare


def declared_in(module: types.ModuleType) -> list[Command]:
    """The commands declared in ``module``: its own functions (not imported ones) that carry
    :func:`command` declarations, in definition order, each function's aliases in declaration
    order."""
    found: list[Command] = []
    for value in vars(module).values():
        if callable(value) and getattr(value, "__module__", None) == module.__name__:
            found.extend(spec for spec in getattr(value, "commands", ()) if isinstance(spec, Command))
    return found


@dataclasses.dataclass(frozen=True)
class Registry:
    """The bot's command table: every command in matching order, built once and never changed
    (a new table is built when the operator's modules are added: :func:`load_configured`).

    ``modules`` names the operator's modules it holds (each is loaded once)."""

    commands: tuple[Command, ...] = ()
    modules: tuple[str, ...] = ()
    first_chars: frozenset[str] = frozenset()

    @classmethod
    def build(cls, commands: Iterable[Command], modules: tuple[str, ...] = ()) -> "Registry":
        """A table of ``commands`` in this order. Raises ValueError for a trigger declared twice."""
        table = tuple(commands)
        triggers = [c.trigger for c in table]
        twice = sorted({t for t in triggers if triggers.count(t) > 1})
        if twice:
            raise ValueError(f"commands declared twice: {twice}")
        return cls(table, modules, frozenset(c.trigger[0] for c in table))

    def extended(self, commands: Iterable[Command], module: str) -> tuple["Registry", list[str]]:
        """This table with ``commands`` (of the operator's ``module``) after its own; a trigger
        that exists already is left out. Returns (the new table, the triggers left out)."""
        taken = {c.trigger for c in self.commands}
        kept: list[Command] = []
        refused: list[str] = []
        for cmd in commands:
            if cmd.trigger in taken:
                refused.append(cmd.trigger)
                continue
            taken.add(cmd.trigger)
            kept.append(cmd)
        return Registry.build((*self.commands, *kept), (*self.modules, module)), refused

    def find(self, text: str) -> Command | None:
        """The first command (declaration order) that ``text`` invokes, or None. Most chat lines
        start with a character no trigger starts with and cost one set lookup."""
        if not text or text[0] not in self.first_chars:
            return None
        for cmd in self.commands:
            if cmd.matches(text):
                return cmd
        return None

    def __iter__(self):
        return iter(self.commands)

    def __len__(self) -> int:
        return len(self.commands)


def registry(state: State | None) -> Registry:
    """The table ``state`` answers with (:func:`install`, :func:`load_configured`), else the
    built-in one."""
    table = getattr(state, "commands", None) if state is not None else None
    return table if isinstance(table, Registry) else BUILTIN


def find(text: str, state: State | None = None) -> Command | None:
    """The first command of ``state``'s table (the built-in one without a state) that ``text``
    invokes, or None."""
    return registry(state).find(text)


# ------------------------------------------------------------------------------------ context
class Context:
    """What a handler gets: who wrote what where, the parsed arguments, and ways to answer.

    * ``state``, ``sender`` (the sender's token), ``channel`` (internal channel name, e.g.
      ``#multi_5``, or None for a PM to the bot), ``text`` (the whole message), ``command``;
    * ``args``: the words after the trigger; ``rest``: the text after the trigger, stripped.
    """

    __slots__ = ("state", "sender", "channel", "text", "command", "args", "rest", "started")

    def __init__(self, state: State, sender: Token, channel: str | None, text: str, cmd: Command) -> None:
        self.state = state
        self.sender = sender
        self.channel = channel
        self.text = text
        self.command = cmd
        self.rest = text[len(cmd.trigger):].strip()
        self.args = self.rest.split()
        self.started = time.monotonic()

    @property
    def bot_name(self) -> str:
        return self.state.bot.username if self.state.bot is not None else "the bot"

    def wrong_syntax(self) -> str:
        return f"Wrong syntax: {self.command.usage}"

    def reply(self, text: Reply) -> None:
        """Send ``text`` where the command's replies go (the channel, else the sender)."""
        if self.channel is not None and not self.command.private_reply:
            for line in _lines(text):
                if chat.bot_message(self.state, self.channel, line) is chat.Result.NO_CHANNEL:
                    # the channel is gone (e.g. ``!mp close``): tell the sender instead
                    self.reply_private(line)
        else:
            self.reply_private(text)

    def reply_private(self, text: Reply) -> None:
        """Send ``text`` as a PM from the bot to the sender's session that used the command."""
        state = self.state
        if state.bot is None:
            return
        for line in _lines(text):
            if state.tokens.by_name(self.sender.safe_name) is self.sender:
                chat.send_message(state, state.bot, self.sender.username, line)
            elif not self.sender.logged_out:
                # a second session of the user (tournament client): answer that very session
                chat.bot_private(state, self.sender, chat.truncate(state, line))

    def notify(self, text: str) -> None:
        """A notification (24) to the sender's session."""
        self.sender.enqueue(codec.notification(text))


def _lines(text: Reply) -> list[str]:
    if text is None or text is False:
        return []
    if isinstance(text, str):
        items: Iterable[str] = (text,)
    else:
        items = text
    out: list[str] = []
    for item in items:
        out.extend(line for line in str(item).split("\n") if line.strip())
    return out


# ------------------------------------------------------------------------------------ dispatch
def dispatch(state: State, sender: Token, channel: str | None, text: str) -> Command | None:
    """Run the command ``text`` invokes, if any (the rules in the module docstring).

    Returns the command that was matched and allowed (even if it then failed or replied with a
    syntax error), or None. Never raises for bad input; never blocks.
    """
    if sender.is_bot or state.bot is None:
        return None
    cmd = registry(state).find(text)
    if cmd is not None and not cmd.active(state):
        cmd = None
    if cmd is None:
        if channel is None:
            _not_a_command(state, sender, text)
        return None
    if not cmd.permitted(state, sender, channel):
        log.info("command %r refused: user=%d lacks privileges", cmd.trigger, sender.user_id)
        return None
    ctx = Context(state, sender, channel, text, cmd)
    if (cmd.where == CHANNEL and channel is None) or (cmd.where == PRIVATE and channel is not None):
        if cmd.wrong_place != "":
            template = cmd.wrong_place or (WRONG_PLACE_CHANNEL if cmd.where == CHANNEL else WRONG_PLACE_PRIVATE)
            ctx.reply_private(template.format(trigger=cmd.name, bot=ctx.bot_name))
        return None
    if len(ctx.args) < cmd.required_args:
        ctx.reply(ctx.wrong_syntax())
        return cmd
    log.info("command %r by user=%d in %s", cmd.trigger, sender.user_id, channel or "PM")
    try:
        result = cmd.handler(ctx)
    except WrongSyntax as exc:
        ctx.reply(str(exc) or ctx.wrong_syntax())
        return cmd
    except Exception as exc:
        _failed(ctx, exc)
        return cmd
    if inspect.isawaitable(result):
        task = state.spawn(_finish(ctx, result), f"bot command {cmd.trigger!r} of user {sender.user_id}")
        if task is None and inspect.iscoroutine(result):  # no event loop (tests driving events directly)
            result.close()
    else:
        ctx.reply(result)
    return cmd


async def _finish(ctx: Context, pending: Awaitable[Reply]) -> None:
    try:
        result = await pending
    except WrongSyntax as exc:
        ctx.reply(str(exc) or ctx.wrong_syntax())
        return
    except Exception as exc:
        _failed(ctx, exc)
        return
    ctx.reply(result)
    log.debug("command %r done in %.1f ms", ctx.command.trigger, (time.monotonic() - ctx.started) * 1000)


def _failed(ctx: Context, exc: BaseException) -> None:
    log.error("command %r by user=%d failed: %r", ctx.command.trigger, ctx.sender.user_id, ctx.text,
              exc_info=exc)
    text = GENERIC_ERROR.format(trigger=ctx.command.name)
    if ctx.sender.admin:
        text += f" ({type(exc).__name__}: {exc})"
    try:
        ctx.reply(text)
    except Exception:
        log.exception("could not send the error reply")


def _not_a_command(state: State, sender: Token, text: str) -> None:
    """A PM to the bot that invokes no command: a greeting, or a pointer to !help."""
    if not text.strip() or text.startswith("\x01"):
        return
    cmd = Command(trigger="?", handler=lambda ctx: None)
    ctx = Context(state, sender, None, text, cmd)
    if text.startswith("!"):
        ctx.reply_private(UNKNOWN_COMMAND)
    else:
        ctx.reply_private(GREETING.format(bot=ctx.bot_name))


def usable_commands(state: State, sender: Token, channel: str | None) -> list[Command]:
    """The documented commands ``sender`` may use (for ``!help``), in declaration order."""
    return [c for c in registry(state) if not c.hidden and c.active(state) and c.permitted(state, sender, channel)]


# ------------------------------------------------------------------------------------ docs
def privilege_names(mask: int) -> str:
    """``ADMIN_BAN_USERS (32)`` style names of the bits in ``mask`` (``—`` for 0)."""
    if not mask:
        return "—"
    names = []
    for name, value in vars(privs).items():
        if name.isupper() and not name.startswith(("CLIENT_", "KAWATA_", "RO_", "RIPPLE_")) \
                and isinstance(value, int) and value & (value - 1) == 0 and mask & value:
            names.append(f"{name} ({value})")
    return " or ".join(names) or str(mask)


def render_markdown(table: Registry | None = None) -> str:
    """The generated part of ``docs/commands.md``: one table row per documented command, and a
    table per command with subcommands (of ``table``, the built-in commands by default).
    ``scripts/gen_commands_doc.py`` writes it; a test compares it with the file, so the docs
    cannot drift from the registry."""
    commands = (table or BUILTIN).commands

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ") or "—"

    out = ["| command | syntax | privileges | where | stacks | what it does |", "|---|---|---|---|---|---|"]
    for cmd in commands:
        if cmd.hidden:
            continue
        who = privilege_names(cmd.privileges)
        if cmd.allow_doc:
            who = f"{who}; {cmd.allow_doc}" if cmd.privileges else cmd.allow_doc
        what = cmd.description
        if cmd.effect:
            what = f"{what} {cmd.effect}".strip()
        if cmd.enabled_doc:
            what = f"{what} Only when {cmd.enabled_doc}.".strip()
        out.append(f"| `{cell(cmd.name)}` | {cell(f'`{cmd.syntax}`' if cmd.syntax else '')} | {cell(who)} "
                   f"| {cmd.where} | {cell(', '.join(s for s in STACKS if s in cmd.stacks))} | {cell(what)} |")
    for cmd in commands:
        if cmd.hidden or not cmd.subcommands:
            continue
        out += ["", f"### `{cmd.name}` subcommands", "", "| subcommand | what it does |", "|---|---|"]
        for sub in cmd.subcommands:
            usage = f"{cmd.trigger} {sub.name} {sub.syntax}".rstrip()
            out.append(f"| `{cell(usage)}` | {cell(sub.description)} |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------ loading
def _builtin() -> Registry:
    """Import the modules of :data:`BUILTIN_MODULES` and build their table, once at import."""
    commands: list[Command] = []
    for name in BUILTIN_MODULES:
        commands += declared_in(importlib.import_module(f"{__name__}.{name}"))
    return Registry.build(commands)


def load_configured(state: State, cfg: Any = None) -> list[str]:
    """Load the operator's command modules listed in ``[bot] command_modules`` (comma-separated
    ``.py`` paths, relative to the working directory, or importable module names) into
    ``state``'s table, after the built-in commands, so theirs match after ours. Each is loaded
    once per state; a module that fails to load is logged (with its traceback) and skipped, a
    trigger that exists already is refused and logged; the server still starts. Returns the
    names loaded by this call. ``cfg`` defaults to ``state.cfg``."""
    cfg = cfg if cfg is not None else state.cfg
    raw = getattr(getattr(cfg, "bot", None), "command_modules", "") or ""
    table = registry(state)
    loaded = []
    for item in (part.strip() for part in raw.split(",")):
        if not item or item in table.modules:
            continue
        try:
            if item.endswith(".py") or os.sep in item:
                path = os.path.abspath(item)
                stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
                spec = importlib.util.spec_from_file_location(f"{__name__}.ext_{stem}", path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(item)
        except Exception:
            log.exception("could not load the command module %s ([bot] command_modules)", item)
            table = dataclasses.replace(table, modules=(*table.modules, item))  # tried once
            continue
        table, refused = table.extended(declared_in(module), item)
        for trigger in refused:
            log.error("command %r of %s refused: a command with this trigger exists", trigger, item)
        loaded.append(item)
        log.info("loaded the command module %s", item)
    state.commands = table
    return loaded


def install(state: State) -> None:
    """Make the bot answer commands on ``state``: :func:`dispatch` joins ``state.bot_hooks``
    (once; calling again does nothing). The state answers with the built-in table until
    :func:`load_configured` gives it one with the operator's commands (``state.commands``)."""
    if dispatch not in state.bot_hooks:
        state.bot_hooks.append(dispatch)


#: the built-in commands in declaration (= matching) order, built once: the modules of
#: BUILTIN_MODULES are imported here
BUILTIN: Registry = _builtin()
#: the built-in commands as a tuple (docs, tests)
REGISTRY: tuple[Command, ...] = BUILTIN.commands
