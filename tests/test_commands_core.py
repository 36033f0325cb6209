"""The bot's command dispatch in-process (services/commands/__init__.py; docs/commands.md): chat
lines go through the chat pipeline (``services.chat.send_message``), which offers them to the
bot, on a real :class:`State` with in-memory fakes. The bot's answers are read, decoded by chio,
from what the sender (or the channel) receives.

These are the tests ``scripts/mutation.sh`` runs against the mutants of the dispatch
(docs/testing.md); the commands themselves are tested against a real server in
``tests/integration/test_commands*.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from services import chat, commands as cmds
from tests.fakes import BOT_NAME, World, messages, received, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")

STAFF = 131072  # ADMIN_SEND_ALERTS: !alert


def commanded(*args, **kwargs) -> World:
    """A World whose bot answers commands (services.commands.install, as pep.py does)."""
    world = World(*args, **kwargs)
    cmds.install(world.state)
    return world


@pytest.fixture
def world() -> World:
    return commanded()


def bot_lines(token):
    return [m.content for m in messages(token) if m.sender == BOT_NAME]


def test_channel_command_answers_in_the_channel(world):
    a, b = world.user("Alice"), world.user("Bob")
    chat.send_message(world.state, a, "#osu", "!faq spam")
    assert bot_lines(b) == ["Please don't spam."]
    assert bot_lines(a) == ["Please don't spam."]


def test_pm_command_answers_by_pm(world):
    a, b = world.user("Alice"), world.user("Bob")
    chat.send_message(world.state, a, BOT_NAME, "!faq spam")
    got = messages(a)
    assert [(m.sender, m.content, m.target) for m in got] == [(BOT_NAME, "Please don't spam.", "Alice")]
    assert messages(b) == []


def test_private_reply_command_answers_by_pm_from_a_channel(world):
    a, b = world.user("Alice"), world.user("Bob")
    chat.send_message(world.state, a, "#osu", "!help")
    assert bot_lines(b) == []
    lines = [(m.content, m.target) for m in messages(a)]
    assert lines and all(target == "Alice" for _, target in lines)
    assert any(text.startswith("1. - !roll") for text, _ in lines)
    assert not any(" - !alert " in text for text, _ in lines)  # not usable by Alice


def test_help_lists_staff_commands_for_staff(world):
    s = world.user("Staff", privileges=3 | STAFF)
    usable = [c.trigger for c in cmds.usable_commands(world.state, s, None)]
    page = usable.index("!alert") // 5 + 1  # the staff commands come after the players' ones
    chat.send_message(world.state, s, BOT_NAME, f"!help {page}")
    lines = bot_lines(s)
    assert lines[0].startswith(f"--- {page} of ")
    assert any(" - !alert <message...> - " in text for text in lines)
    assert "!alert" in usable and "!ban" not in usable
    assert all(not c.hidden for c in cmds.usable_commands(world.state, s, None))


def test_trigger_must_be_the_whole_word(world):
    a = world.user("Alice")
    assert cmds.find("!faq") is not None and cmds.find("!faq spam").trigger == "!faq"
    assert cmds.find("!faqs") is None and cmds.find("") is None and cmds.find("hello") is None
    assert cmds.find("!FAQ spam") is None
    chat.send_message(world.state, a, BOT_NAME, "!rolling")
    assert bot_lines(a) == [cmds.UNKNOWN_COMMAND]


def test_pm_that_is_no_command(world):
    a = world.user("Alice")
    chat.send_message(world.state, a, BOT_NAME, "hello there")
    assert bot_lines(a) == [cmds.GREETING.format(bot=BOT_NAME)]
    chat.send_message(world.state, a, BOT_NAME, "!nothing")
    assert bot_lines(a) == [cmds.UNKNOWN_COMMAND]
    chat.send_message(world.state, a, BOT_NAME, "\x01ACTION waves\x01")
    assert bot_lines(a) == []
    chat.send_message(world.state, a, "#osu", "!nothing")
    chat.send_message(world.state, a, "#osu", "hello channel")
    assert bot_lines(a) == []


def test_privileges_refuse_silently(world, caplog):
    a, b = world.user("Alice"), world.user("Bob")
    with caplog.at_level(logging.INFO, logger="pep.commands"):
        chat.send_message(world.state, a, "#osu", "!alert hi")
    assert bot_lines(b) == [] and bot_lines(a) == []
    assert [p for p in received(b) if p.id == 24] == []
    assert f"command '!alert' refused: user={a.user_id} lacks privileges" in [r.getMessage() for r in caplog.records]
    staff = world.user("Staff", privileges=3 | STAFF)
    received(b)
    chat.send_message(world.state, staff, BOT_NAME, "!alert hello everyone")
    assert [p.value for p in received(b) if p.id == 24] == ["hello everyone"]


def test_wrong_place(world):
    a = world.user("Alice")
    chat.send_message(world.state, a, "#osu", "!with HD")
    assert bot_lines(a) == [cmds.WRONG_PLACE_PRIVATE.format(trigger="!with", bot=BOT_NAME)]
    mod = world.user("Mod", privileges=3 | 262144)
    chat.send_message(world.state, mod, BOT_NAME, "!moderated on")
    assert bot_lines(mod) == ["You are trying to put a private chat in moderated mode. Are you serious?!? You're fired."]
    chat.send_message(world.state, a, "#osu", "\x01ACTION is playing something\x01")
    assert bot_lines(a) == []  # wrong_place "" = no reply


def test_generic_wrong_place_for_channel_commands():
    cmd = cmds.Command(trigger="!x", handler=lambda ctx: "x", where=cmds.CHANNEL)
    world = commanded()
    a = world.user("Alice")
    ctx = cmds.Context(world.state, a, None, "!x", cmd)
    assert ctx.bot_name == BOT_NAME and ctx.rest == "" and ctx.args == []
    assert cmds.WRONG_PLACE_CHANNEL.format(trigger="!x") == "!x only works in a chat channel."


def test_missing_arguments_give_the_syntax(world):
    a, b = world.user("Alice"), world.user("Bob")
    chat.send_message(world.state, a, "#osu", "!faq")
    assert bot_lines(b) == ["Wrong syntax: !faq <topic>"]
    s = world.user("Staff", privileges=3 | STAFF)
    chat.send_message(world.state, s, BOT_NAME, "!alertuser Bob")
    assert bot_lines(s) == ["Wrong syntax: !alertuser <user> <message...>"]


def test_arguments_split_on_whitespace(world):
    a = world.user("Alice")
    chat.send_message(world.state, a, BOT_NAME, "!roll   50")
    lines = bot_lines(a)
    assert len(lines) == 1 and lines[0].startswith("Alice rolls ")
    assert 0 <= int(lines[0].split()[2]) <= 50


def test_failing_command_gives_the_generic_error(caplog, no_errors):
    world = commanded(repo=True)  # the fake repository lacks what !last reads: the command fails
    a, admin = world.user("Alice"), world.user("Admin", admin=True, privileges=3 | STAFF)

    async def run(token):
        chat.send_message(world.state, token, BOT_NAME, "!last")  # needs MySQL: fails without it
        await world.state.drain_tasks()

    with caplog.at_level(logging.ERROR, logger="pep.commands"):
        asyncio.run(run(a))
        asyncio.run(run(admin))
    plain = cmds.GENERIC_ERROR.format(trigger="!last")
    assert bot_lines(a) == [plain]
    admin_lines = bot_lines(admin)
    assert len(admin_lines) == 1 and admin_lines[0].startswith(plain + " (") and admin_lines[0].endswith(")")
    assert sum(r.getMessage().startswith("command '!last' by user=") for r in caplog.records) == 2
    no_errors.clear()


def test_async_command_without_an_event_loop_is_dropped(world):
    a = world.user("Alice")
    assert cmds.dispatch(world.state, a, None, "!last") is not None
    assert bot_lines(a) == []


def test_bot_messages_and_missing_bot_are_ignored(world):
    a = world.user("Alice")
    assert cmds.dispatch(world.state, world.bot, "#osu", "!faq spam") is None
    world.state.bot = None
    assert cmds.dispatch(world.state, a, None, "!faq spam") is None
    assert messages(a) == []


def test_dispatch_returns_the_command(world):
    a = world.user("Alice")
    assert cmds.dispatch(world.state, a, "#osu", "!faq spam").trigger == "!faq"
    assert cmds.dispatch(world.state, a, "#osu", "!faq").trigger == "!faq"  # wrong syntax still matched
    assert cmds.dispatch(world.state, a, "#osu", "!alert x") is None
    assert cmds.dispatch(world.state, a, "#osu", "!with HD") is None


def test_reply_to_a_gone_channel_goes_by_pm(world):
    a = world.user("Alice")
    cmd = cmds.find("!faq spam")
    ctx = cmds.Context(world.state, a, "#gone", "!faq spam", cmd)
    ctx.reply(["line one\nline two", "", "line three"])
    assert bot_lines(a) == ["line one", "line two", "line three"]
    ctx.reply(None)
    ctx.notify("note")
    assert [p.value for p in received(a) if p.id == 24] == ["note"]


def test_reply_to_a_second_session():
    world = commanded()
    a = world.user("Alice")
    t = world.user("Alice", tournament=True, channels=())
    world.state.tokens.remove(t)
    t.user_id = a.user_id
    world.state.tokens.add(t)
    cmd = cmds.find("!faq spam")
    cmds.Context(world.state, t, None, "!faq spam", cmd).reply("to the tourney client")
    assert bot_lines(t) == ["to the tourney client"] and bot_lines(a) == []
    t.logged_out = True
    cmds.Context(world.state, t, None, "!faq spam", cmd).reply("gone")
    assert bot_lines(t) == []


def test_command_declaration_rules():
    with pytest.raises(ValueError):
        cmds.command("")
    with pytest.raises(ValueError):
        cmds.command(" !x")
    with pytest.raises(ValueError):
        cmds.command("!x", where="somewhere")
    with pytest.raises(ValueError):  # a trigger declared twice: refused when the table is built
        cmds.Registry.build([*cmds.REGISTRY, cmds.Command(trigger="!faq", handler=lambda ctx: None)])
    cmd = cmds.Command(trigger="!t", handler=lambda ctx: None, syntax="<a> [b] <c...>")
    assert cmd.required_args == 2 and cmd.usage == "!t <a> [b] <c...>" and cmd.name == "!t"
    assert cmds.Command(trigger="!t", handler=lambda ctx: None).usage == "!t"
    assert cmds.Command(trigger="!t", handler=lambda ctx: None, display="!T").name == "!T"


def test_gate_failure_is_logged_and_refuses(caplog, no_errors):
    world = commanded()
    a = world.user("Alice")

    def gate(state, sender, channel):
        raise RuntimeError("broken gate")

    cmd = cmds.Command(trigger="!g", handler=lambda ctx: None, privileges=STAFF, allow=gate)
    with caplog.at_level(logging.ERROR, logger="pep.commands"):
        assert not cmd.permitted(world.state, a, None)
    assert "privilege gate of !g failed" in [r.getMessage() for r in caplog.records]
    no_errors.clear()
    assert cmds.Command(trigger="!g", handler=lambda ctx: None, privileges=STAFF,
                        allow=lambda s, t, c: True).permitted(world.state, a, None)
    assert cmds.privilege_names(0) == "—" and "ADMIN_SEND_ALERTS (131072)" in cmds.privilege_names(STAFF)


def test_load_configured_modules(tmp_path, caplog, no_errors, monkeypatch):
    """``[bot] command_modules``: files and module names, each loaded once into the state's own
    table (the built-in one is never changed); failures are logged and skipped; a trigger that
    exists already is refused."""
    import sys
    import types
    import uuid

    # names this process has not loaded yet (the loader remembers every name it loaded, and
    # mutmut runs the tests more than once in one process)
    tag = uuid.uuid4().hex
    good = tmp_path / f"my-cmds.{tag}.py"
    good.write_text("from services.commands import command\nLOADED = True\n\n"
                    "@command('!zz_mine', description='mine')\ndef mine(ctx):\n    return 'mine!'\n\n"
                    "@command('!roll')\ndef roll_again(ctx):\n    return 'no'\n")
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    name = f"pep_test_cmds_{tag}"
    (tmp_path / f"{name}.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    missing = f"no_such_module_{tag}"
    not_python = tmp_path / "cmds.txt"  # a path, but no Python file: no loader for it
    not_python.write_text("LOADED = True\n")

    def cfg(value):
        return types.SimpleNamespace(bot=types.SimpleNamespace(command_modules=value))

    world = commanded()
    assert cmds.load_configured(world.state, cfg("")) == []
    assert cmds.load_configured(world.state, types.SimpleNamespace()) == []
    with caplog.at_level(logging.INFO, logger="pep.commands"):
        loaded = cmds.load_configured(world.state, cfg(f" ,, {good} , {broken},{name}, {missing} ,{not_python},"))
    assert loaded == [str(good), name]
    assert sys.modules[f"services.commands.ext_my_cmds_{tag}"].LOADED is True
    messages_ = [r.getMessage() for r in caplog.records]
    assert f"loaded the command module {good}" in messages_ and f"loaded the command module {name}" in messages_
    failed = [r.getMessage() for r in no_errors]
    assert failed == [f"command '!roll' of {good} refused: a command with this trigger exists",
                      f"could not load the command module {broken} ([bot] command_modules)",
                      f"could not load the command module {missing} ([bot] command_modules)",
                      f"could not load the command module {not_python} ([bot] command_modules)"]
    assert [type(r.exc_info[1]) if r.exc_info else None for r in no_errors] == \
        [None, SyntaxError, ModuleNotFoundError, ImportError]
    assert str(no_errors[3].exc_info[1]) == f"cannot load {not_python}"
    no_errors.clear()
    assert cmds.load_configured(world.state, cfg(f"{good},{name}")) == []  # each is loaded once
    # the operator's command answers, after the built-in ones; the built-in table is unchanged
    table = world.state.commands
    assert table.find("!zz_mine").handler.__name__ == "mine" and table.find("!roll").module == "services.commands.user"
    assert [c.trigger for c in table][-1] == "!zz_mine" and cmds.find("!zz_mine") is None
    a = world.user("Alice")
    chat.send_message(world.state, a, BOT_NAME, "!zz_mine")
    assert bot_lines(a) == ["mine!"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.commands = ()  # type: ignore[misc]


def test_load_a_file_relative_to_the_working_directory(tmp_path, monkeypatch):
    """A ``.py`` name without a directory is a file in the working directory, not a module name."""
    import sys
    import uuid

    tag = uuid.uuid4().hex
    (tmp_path / f"local{tag}.py").write_text("WHERE = 'cwd'\n")
    monkeypatch.chdir(tmp_path)
    assert cmds.load_configured(commanded().state, _cfg(f"local{tag}.py")) == [f"local{tag}.py"]
    assert sys.modules[f"services.commands.ext_local{tag}"].WHERE == "cwd"


def _cfg(value):
    import types

    return types.SimpleNamespace(bot=types.SimpleNamespace(command_modules=value))


def test_declaration_defaults_and_their_docs_row():
    def handler(ctx):
        return "ok"

    cmds.command("!zz_defaults")(handler)
    cmds.command("!zz_gated", description="a|b\nc", allow=lambda s, t, c: True, allow_doc="referees",
                 stacks=(cmds.BANCHOPY, cmds.RIPPLE))(handler)
    table = cmds.Registry.build(handler.commands)
    plain = table.find("!zz_defaults")
    assert (plain.syntax, plain.privileges, plain.where, plain.description, plain.effect) == ("", 0, cmds.ANYWHERE, "", "")
    assert plain.allow is None and plain.allow_doc == "" and plain.wrong_place is None
    assert not plain.private_reply and not plain.hidden and plain.display == "" and plain.subcommands == ()
    assert plain.module == __name__ and plain.handler is handler and plain.stacks == ()
    with pytest.raises(ValueError):
        cmds.command("!zz_unknown_stack", stacks=("Akatsuki",))(handler)
    with pytest.raises(ValueError):
        cmds.Registry.build([plain, plain])  # a trigger twice
    rows = cmds.render_markdown(table).splitlines()
    assert "| `!zz_defaults` | — | — | anywhere | — | — |" in rows
    # stacks in the order of cmds.STACKS, whatever the declaration's order
    assert "| `!zz_gated` | — | referees | anywhere | Ripple, bancho.py | a\\|b c |" in rows
    # declaring registers nothing: the built-in table does not know them
    assert cmds.find("!zz_defaults") is None and "!zz_defaults" not in cmds.render_markdown()
    assert isinstance(cmds.REGISTRY, tuple)


# ------------------------------------------------------------------ dispatch rules in detail
import contextlib  # noqa: E402
import gc  # noqa: E402
import re  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402


@contextlib.contextmanager
def declared(state, *specs):
    """Declare test commands (``(trigger, handler, kwargs)``) through the public decorator and
    give ``state`` a table of its own with them after the built-in ones (as the operator's
    modules do: ``state.commands``), taken away afterwards."""
    extra = []
    for trigger, handler, kwargs in specs:
        cmds.command(trigger, **kwargs)(handler)
        extra.append(handler.commands[-1])
    before = state.commands
    state.commands = cmds.Registry.build((*cmds.BUILTIN.commands, *extra))
    try:
        yield state.commands
    finally:
        state.commands = before


class Listener:
    """A chat listener (the IRC gateway's interface) that records what the pipeline hands it."""

    def __init__(self):
        self.private = []
        self.public = []

    def private_message(self, sender, target, text):
        self.private.append((sender.username, target.username, text))

    def channel_message(self, channel, sender, text):
        self.public.append((channel.name, sender.username, text))


def test_handler_errors_are_logged_with_the_message_and_traceback(caplog, no_errors):
    world = commanded()
    a, admin = world.user("Alice"), world.user("Admin", admin=True)
    boom = RuntimeError("boom")

    def fail(ctx):
        raise boom

    with declared(world.state, ("!zz_fail", fail, {})), caplog.at_level(logging.ERROR, logger="pep.commands"):
        assert cmds.dispatch(world.state, a, None, "!zz_fail now").trigger == "!zz_fail"
        chat.send_message(world.state, admin, BOT_NAME, "!zz_fail")
    plain = cmds.GENERIC_ERROR.format(trigger="!zz_fail")
    assert bot_lines(a) == [plain]
    assert bot_lines(admin) == [plain + " (RuntimeError: boom)"]
    records = [r for r in no_errors if r.name == "pep.commands"]
    assert [r.getMessage() for r in records] == [
        f"command '!zz_fail' by user={a.user_id} failed: '!zz_fail now'",
        f"command '!zz_fail' by user={admin.user_id} failed: '!zz_fail'"]
    assert all(r.exc_info is not None and r.exc_info[1] is boom for r in records)
    no_errors.clear()


def test_error_reply_that_cannot_be_sent_is_logged(no_errors):
    from objects.token import Token

    class Unreachable(Token):
        """A session whose queue refuses every packet."""

        def enqueue(self, data):
            raise RuntimeError("queue gone")

    world = commanded()
    u = Unreachable(4242, "Gone", "gone", 3)
    world.state.tokens.add(u)

    def fail(ctx):
        raise ValueError("first failure")

    with declared(world.state, ("!zz_fail2", fail, {})):
        cmds.dispatch(world.state, u, None, "!zz_fail2")
    got = [r.getMessage() for r in no_errors]
    assert got == ["command '!zz_fail2' by user=4242 failed: '!zz_fail2'", "could not send the error reply"]
    no_errors.clear()


def test_wrong_syntax_raised_by_handlers():
    world = commanded()
    a = world.user("Alice")

    def plain(ctx):
        raise cmds.WrongSyntax()

    def told(ctx):
        raise cmds.WrongSyntax("Give me a number.")

    async def plain_async(ctx):
        await asyncio.sleep(0)
        raise cmds.WrongSyntax()

    async def told_async(ctx):
        await asyncio.sleep(0)
        raise cmds.WrongSyntax("Give me a word.")

    async def run():
        for text in ("!zz_ws1 x", "!zz_ws2", "!zz_ws3", "!zz_ws4"):
            chat.send_message(world.state, a, BOT_NAME, text)
        await world.state.drain_tasks()

    with declared(world.state, ("!zz_ws1", plain, {"syntax": "<n> [m]"}), ("!zz_ws2", told, {}),
                  ("!zz_ws3", plain_async, {"syntax": "[x]"}), ("!zz_ws4", told_async, {})):
        asyncio.run(run())
    assert bot_lines(a) == ["Wrong syntax: !zz_ws1 <n> [m]", "Give me a number.",
                            "Wrong syntax: !zz_ws3 [x]", "Give me a word."]


def test_async_handlers_reply_fail_and_log_their_duration(caplog, no_errors):
    world = commanded()
    a = world.user("Alice")
    boom = KeyError("gone")

    async def slow(ctx):
        await asyncio.sleep(0.05)
        return f"done {ctx.args}"

    async def broken(ctx):
        await asyncio.sleep(0)
        raise boom

    async def run():
        chat.send_message(world.state, a, BOT_NAME, "!zz_slow 1 2")
        chat.send_message(world.state, a, BOT_NAME, "!zz_broken")
        await world.state.drain_tasks()

    with declared(world.state, ("!zz_slow", slow, {}), ("!zz_broken", broken, {})), \
            caplog.at_level(logging.DEBUG, logger="pep.commands"):
        asyncio.run(run())
    assert sorted(bot_lines(a)) == sorted(["done ['1', '2']", cmds.GENERIC_ERROR.format(trigger="!zz_broken")])
    done = [r.getMessage() for r in caplog.records if r.getMessage().startswith("command '!zz_slow' done in ")]
    assert len(done) == 1
    ms = float(re.fullmatch(r"command '!zz_slow' done in (\d+\.\d) ms", done[0]).group(1))
    assert 50.0 <= ms < 60000.0  # it slept 50 ms; far less than a minute
    assert [r.exc_info[1] for r in no_errors] == [boom]
    no_errors.clear()


def test_async_command_without_an_event_loop_leaves_no_coroutine_behind(world, caplog):
    a = world.user("Alice")

    async def never(ctx):
        return "never"

    with declared(world.state, ("!zz_never", never, {})), warnings.catch_warnings(record=True) as caught, \
            caplog.at_level(logging.WARNING, logger="pep"):
        warnings.simplefilter("always")
        assert cmds.dispatch(world.state, a, None, "!zz_never").trigger == "!zz_never"
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert f"no event loop for bot command '!zz_never' of user {a.user_id}" in [r.getMessage() for r in caplog.records]
    assert bot_lines(a) == []


def test_dispatch_logs_who_used_what_where(caplog):
    world = commanded()
    a = world.user("Alice")
    with caplog.at_level(logging.INFO, logger="pep.commands"):
        chat.send_message(world.state, a, "#osu", "!faq spam")
        chat.send_message(world.state, a, BOT_NAME, "!faq spam")
    lines = [r.getMessage() for r in caplog.records if r.name == "pep.commands"]
    assert lines == [f"command '!faq' by user={a.user_id} in #osu", f"command '!faq' by user={a.user_id} in PM"]


def test_false_and_empty_replies_send_nothing(world):
    a = world.user("Alice")
    with declared(world.state, ("!zz_false", lambda ctx: False, {}), ("!zz_none", lambda ctx: None, {}),
                  ("!zz_blank", lambda ctx: ["", "  ", "\n"], {})):
        for text in ("!zz_false", "!zz_none", "!zz_blank"):
            assert cmds.dispatch(world.state, a, None, text) is not None
            assert cmds.dispatch(world.state, a, "#osu", text) is not None
    assert messages(a) == []


def test_gate_sees_the_state_and_the_channel():
    world = commanded()
    a, b = world.user("Alice"), world.user("Bob")
    seen = []

    def gate(state, sender, channel):
        seen.append((state is world.state, sender is a, channel))
        return state is world.state and channel == "#osu"

    with declared(world.state, ("!zz_gated", lambda ctx: "let in", {"privileges": STAFF, "allow": gate})):
        chat.send_message(world.state, a, "#osu", "!zz_gated")
        assert bot_lines(b) == ["let in"]
        chat.send_message(world.state, a, BOT_NAME, "!zz_gated")
        assert bot_lines(a) == ["let in"]  # the channel line, and nothing for the PM
        names = [c.trigger for c in cmds.usable_commands(world.state, a, "#osu")]
        assert "!zz_gated" in names and "!zz_gated" not in [
            c.trigger for c in cmds.usable_commands(world.state, a, None)]
    assert seen[:2] == [(True, True, "#osu"), (True, True, None)]


def test_generic_wrong_place_texts_through_dispatch(world):
    a, b = world.user("Alice"), world.user("Bob")
    with declared(world.state, ("!zz_chan", lambda ctx: "ok", {"where": cmds.CHANNEL}),
                  ("!zz_pm", lambda ctx: "ok", {"where": cmds.PRIVATE, "display": "!zz_pm (shown)"})):
        assert cmds.dispatch(world.state, a, None, "!zz_chan") is None
        assert cmds.dispatch(world.state, a, "#osu", "!zz_pm") is None
    assert bot_lines(a) == ["!zz_chan only works in a chat channel.",
                            f"!zz_pm (shown) only works in a private message to {BOT_NAME}."]
    assert bot_lines(b) == []


def test_declared_options_are_kept():
    def handler(ctx):
        return "ok"

    gate = lambda s, t, c: False  # noqa: E731
    subs = [cmds.Subcommand("one", "<x>", "first")]
    world = commanded()
    with declared(world.state, ("!zz_full", handler, dict(syntax="<a>", privileges=STAFF, where=cmds.PRIVATE,
                                            description="d", effect="e", allow=gate, allow_doc="who",
                                            wrong_place="not here", private_reply=True, hidden=True,
                                            display="!zz full", subcommands=subs, stacks=[cmds.KAWATA]))):
        cmd = cmds.find("!zz_full 1", world.state)
        assert (cmd.trigger, cmd.handler, cmd.syntax, cmd.privileges, cmd.where) == (
            "!zz_full", handler, "<a>", STAFF, cmds.PRIVATE)
        assert (cmd.description, cmd.effect, cmd.allow, cmd.allow_doc, cmd.wrong_place) == ("d", "e", gate, "who", "not here")
        assert (cmd.private_reply, cmd.hidden, cmd.display, cmd.subcommands, cmd.stacks) == (
            True, True, "!zz full", (subs[0],), (cmds.KAWATA,))
        assert cmd.module == __name__


def test_a_handler_without_a_module_name():
    class Anonymous:
        """A callable whose ``__module__`` cannot be read."""

        def __getattribute__(self, name):
            if name == "__module__":
                raise AttributeError(name)
            return object.__getattribute__(self, name)

        def __call__(self, ctx):
            return "anon"

    handler = Anonymous()
    world = commanded()
    with declared(world.state, ("!zz_anon", handler, {})):
        assert cmds.find("!zz_anon", world.state).module == ""


def test_declaration_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"^bad trigger ' !x'$"):
        cmds.command(" !x")
    with pytest.raises(ValueError, match=r"^!x: where must be one of \('anywhere', 'channel', 'private'\)$"):
        cmds.command("!x", where="somewhere")
    with pytest.raises(ValueError, match=r"^!x: stacks must be among \('Ripple', 'Kawata', 'RealistikOsu', 'bancho.py'\)$"):
        cmds.command("!x", stacks=["Akatsuki"])
    with pytest.raises(ValueError, match=r"^commands declared twice: \['!faq'\]$"):
        cmds.Registry.build([*cmds.REGISTRY, cmds.Command(trigger="!faq", handler=lambda ctx: None)])


def test_a_new_first_character_is_found():
    world = commanded()
    trigger = "\u00a7zz_new"  # no built-in trigger starts with this character
    assert cmds.find(trigger) is None
    with declared(world.state, (trigger, lambda ctx: "ok", {})):
        assert cmds.find(trigger, world.state).trigger == trigger
    assert cmds.find(trigger, world.state) is None and cmds.find("!faq spam", world.state).trigger == "!faq"


def test_loading_the_builtin_modules_again_changes_nothing():
    again = cmds._builtin()
    assert again.commands == cmds.REGISTRY == cmds.BUILTIN.commands and len(again) > 20
    assert again is not cmds.BUILTIN


def test_reply_by_pm_goes_through_the_chat_pipeline(world):
    a = world.user("Alice")
    listener = Listener()
    world.state.chat_listeners.append(listener)
    chat.send_message(world.state, a, BOT_NAME, "!faq spam")
    assert bot_lines(a) == ["Please don't spam."]
    assert listener.private == [(BOT_NAME, "Alice", "Please don't spam.")]  # PMs to the bot are not relayed


def test_privilege_names_of_single_bits_and_unnamed_masks():
    assert cmds.privilege_names(1) == "USER_PUBLIC (1)"
    assert cmds.privilege_names(1 | 131072) == "USER_PUBLIC (1) or ADMIN_SEND_ALERTS (131072)"
    assert cmds.privilege_names(1 << 40) == str(1 << 40)  # no named bit
