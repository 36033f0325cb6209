"""A scripted session of Debian's ``irssi`` in ``tmux`` against the gateway (docs/irc.md):
connect with the IRC token, join ``#osu``, talk with a game client of the test suite both ways,
PM both ways, ``!roll``, quit. irssi logs every window to files, which the test reads."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests import client as C

pytestmark = pytest.mark.skipif(not (shutil.which("irssi") and shutil.which("tmux")),
                                reason="irssi and tmux are needed (scripts/setup.sh --test installs them)")


class Irssi:
    """irssi in a detached tmux session, with its own home directory and autolog."""

    def __init__(self, home: Path, port: int, nick: str, token: str) -> None:
        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True)
        self.session = f"pepirc{secrets.token_hex(4)}"
        (home / "config").write_text(
            "settings = {\n"
            f'  core = {{ real_name = "{nick}"; user_name = "{nick}"; nick = "{nick}"; }};\n'
            '  "fe-common/core" = { autolog = "yes"; autolog_path = "' + str(self.logs) + '/$0.log";'
            ' autolog_level = "all"; autocreate_query_level = "MSGS"; };\n'
            "};\n")
        command = (f"irssi --home={home} -c 127.0.0.1 -p {port} -w {token} -n {nick}")
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "200", "-y", "50", command],
                       check=True, timeout=10)

    def keys(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, "-l", text], check=True, timeout=10)
        subprocess.run(["tmux", "send-keys", "-t", self.session, "Enter"], check=True, timeout=10)

    def screen(self) -> str:
        res = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True, text=True,
                             timeout=10)
        return res.stdout

    def log(self, name: str) -> str:
        path = self.logs / f"{name.lower()}.log"
        if not path.exists():
            path = self.logs / f"{name}.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def wait_log(self, name: str, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            time.sleep(0.1)
        logs = {p.name: p.read_text("utf-8", "replace")[-1500:] for p in self.logs.glob("*.log")}
        raise AssertionError(f"{text!r} not in irssi's log of {name}; logs: {logs!r}; screen:\n{self.screen()}")

    def wait_screen(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.screen():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on irssi's screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True, timeout=10)


def test_irssi_session(server, tmp_path):
    user = server.new_user()
    token = server.irc_token(user.name)
    game = server.connect()
    game.send(C.channel_join("#osu"))
    irssi = Irssi(tmp_path / "irssi", server.irc_port, user.name, token)
    try:
        irssi.wait_screen("End of /MOTD", timeout=15)
        C.wait_for(game, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == user.id,
                   description="presence of the irssi user")
        irssi.keys("/join #osu")
        irssi.wait_log("#osu", "Main osu! channel")  # the topic (332)
        said = f"hello from irssi {secrets.token_hex(3)}"
        irssi.keys(said)
        p = C.wait_for(game, lambda p: C.is_message(p, content=said), description="irssi message in #osu")
        assert p.value.sender == user.name and p.value.target == "#osu"
        answer = f"hello from the game {secrets.token_hex(3)}"
        game.send(C.public_message("#osu", answer))
        irssi.wait_log("#osu", answer)
        # PM both ways
        pm = f"pm from irssi {secrets.token_hex(3)}"
        irssi.keys(f"/msg {game.user.name} {pm}")
        C.wait_for(game, lambda p: C.is_message(p, content=pm, target=game.user.name), description="irssi PM")
        back = f"pm from the game {secrets.token_hex(3)}"
        game.send(C.private_message(user.name, back))
        irssi.wait_log(game.user.name, back)
        # !roll: the bot answers in the channel
        irssi.keys("/window goto #osu")
        irssi.keys("!roll 10")
        irssi.wait_log("#osu", "rolls")
        C.wait_for(game, lambda p: C.is_message(p, sender=server.bot_name()) and "rolls" in p.value.content,
                   description="the bot's roll in the game")
        irssi.keys("/quit bye")
        C.wait_for(game, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == user.id,
                   description="logout of the irssi user")
    finally:
        irssi.close()
