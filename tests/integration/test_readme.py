"""The README is true to the code: its commands run as written against a real server.

* "Check it works": the shell block is run with bash against the test server (only the port,
  the account and the location of ``.venv``/``scripts`` are substituted) and must log in.
* "Connecting a real osu! client to a test server": ``scripts/tls-proxy.sh`` makes its
  certificate and runs nginx; a login over HTTPS through it, with the certificate checked for
  ``c.<domain>``, must succeed, and a name the certificate does not cover must fail.
* Every configuration key of ``helpers/config.py`` is in the README's table, every ``pep.py``
  subcommand the README names exists, and every script it names exists and parses.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from urllib.parse import urlparse

import pytest

from helpers import config as config_module
from tests.conftest import PYTHON, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
DECODE = [PYTHON, str(REPO / "scripts" / "decode.py")]


def section(title: str) -> str:
    start = README.index(title)
    following = README.find("\n## ", start + len(title))
    return README[start:following if following != -1 else len(README)]


def first_sh_block(text: str) -> str:
    m = re.search(r"```sh\n(.*?)```", text, re.S)
    assert m, "no ```sh block"
    return m.group(1)


def port_of(server) -> int:
    return urlparse(server.url).port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_it_works_block_logs_in(server, tmp_path):
    user = server.new_user()
    block = first_sh_block(section("## Check it works"))
    assert "'PASSWORD'" in block and "127.0.0.1:5001" in block and " demo " in block
    script = (block.replace("127.0.0.1:5001", f"127.0.0.1:{port_of(server)}")
              .replace(" demo ", f" {user.name} ")
              .replace("'PASSWORD'", "'" + user.password.replace("'", "'\\''") + "'")
              .replace(".venv/bin/python scripts/", f"{PYTHON} {REPO}/scripts/"))
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"login_reply (4 bytes) {user.id}\n" in out.stdout
    assert "channel_join_success (6 bytes) '#osu'" in out.stdout
    assert "undecodable" not in out.stdout
    assert (tmp_path / "poll.bin").exists()
    # the first lines of the README's sample output are what a login really starts with
    sample = re.search(r"```\n( 75 protocol_version.*?)```", section("## Check it works"), re.S)
    assert sample
    first_line = sample.group(1).splitlines()[0]
    assert out.stdout.splitlines()[0] == first_line


def test_a_wrong_password_is_refused_by_the_same_commands(server, tmp_path):
    user = server.new_user()
    body = subprocess.run(DECODE + ["login-body", user.name, "not the password"],
                          capture_output=True, check=True).stdout
    reply = subprocess.run(["curl", "-s", "--data-binary", "@-", server.url], input=body,
                           capture_output=True, check=True, timeout=30).stdout
    decoded = subprocess.run(DECODE, input=reply, capture_output=True, check=True).stdout.decode()
    assert "login_reply (4 bytes) -1" in decoded


@pytest.mark.skipif(shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"),
                    reason="nginx is not installed (scripts/setup.sh --test installs it)")
def test_tls_proxy_recipe_logs_in_over_https(server, tmp_path):
    user = server.new_user()
    listen = free_port()
    tls_dir = tmp_path / "tls"
    proxy = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "tls-proxy.sh"), "pep.test", "--listen", str(listen),
         "--upstream", f"127.0.0.1:{port_of(server)}", "--dir", str(tls_dir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                if proxy.poll() is not None or time.monotonic() > deadline:
                    output = proxy.stdout.read().decode(errors="replace") if proxy.stdout else ""
                    pytest.fail(f"tls-proxy.sh did not start: {output}")
                time.sleep(0.1)
        cert = tls_dir / "cert.pem"
        assert cert.exists() and (tls_dir / "key.pem").stat().st_mode & 0o077 == 0

        body = subprocess.run(DECODE + ["login-body", user.name, user.password],
                              capture_output=True, check=True).stdout
        https = ["curl", "-s", "-S", "--cacert", str(cert), "-D", str(tmp_path / "headers.txt"),
                 "--data-binary", "@-"]
        ok = subprocess.run(https + ["--resolve", f"c.pep.test:{listen}:127.0.0.1",
                                     f"https://c.pep.test:{listen}/"],
                            input=body, capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        decoded = subprocess.run(DECODE, input=ok.stdout, capture_output=True,
                                 check=True).stdout.decode()
        assert f"login_reply (4 bytes) {user.id}\n" in decoded
        headers = (tmp_path / "headers.txt").read_text().lower()
        assert "cho-token:" in headers

        # the certificate is really checked: a name it does not cover is refused by curl
        wrong = subprocess.run(https + ["--resolve", f"c.other.test:{listen}:127.0.0.1",
                                        f"https://c.other.test:{listen}/"],
                               input=body, capture_output=True, timeout=30)
        assert wrong.returncode == 60, wrong.stderr  # peer certificate cannot be authenticated
    finally:
        try:
            os.killpg(proxy.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proxy.pid, signal.SIGKILL)
            proxy.wait(timeout=10)


def test_tls_proxy_refuses_unsafe_arguments(tmp_path):
    for args in (["pep.test; rm -rf /"], ["pep.test", "--listen", "44x"],
                 ["pep.test", "--upstream", "127.0.0.1:5001; x"], []):
        out = subprocess.run(["bash", str(REPO / "scripts" / "tls-proxy.sh"), *args,
                              "--dir", str(tmp_path / "x")] if args else
                             ["bash", str(REPO / "scripts" / "tls-proxy.sh")],
                             cwd=REPO, capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
    assert not (tmp_path / "x" / "nginx.conf").exists()


def test_configuration_table_lists_every_key():
    table = section("## Configuration")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `\[(\w+)\]` \| (.*)\|$", table, re.M)}
    cfg = config_module.load(None, environ={})
    missing = []
    for field in dataclasses.fields(cfg):
        group = getattr(cfg, field.name)
        if not dataclasses.is_dataclass(group):
            continue
        row = rows.get(field.name)
        if row is None:
            missing.append(f"[{field.name}]")
            continue
        for key in dataclasses.fields(group):
            if f"`{key.name}`" not in row:
                missing.append(f"[{field.name}] {key.name}")
    assert not missing, "README configuration table lacks: " + ", ".join(missing)


def test_pep_py_subcommands_named_in_the_readme_exist():
    out = subprocess.run([PYTHON, str(REPO / "pep.py"), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    known = set(re.findall(r"\{([a-z,-]+)\}", out.stdout)[0].split(","))
    named = set(re.findall(r"(?:python3?|\.venv/bin/python) pep\.py (?:--config \S+ )?([a-z][a-z-]+)",
                           README))
    assert named, "the README names no subcommand"
    assert named <= known, f"not subcommands of pep.py: {sorted(named - known)}"


def test_scripts_named_in_the_readme_exist_and_parse():
    names = set(re.findall(r"scripts/([\w-]+\.(?:sh|py))", README))
    assert {"setup.sh", "run.sh", "test.sh", "services.sh", "tls-proxy.sh", "decode.py"} <= names
    for name in sorted(names):
        path = REPO / "scripts" / name
        assert path.exists(), name
        if name.endswith(".sh"):
            check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        else:
            check = subprocess.run([PYTHON, "-m", "py_compile", str(path)], capture_output=True,
                                   text=True)
        assert check.returncode == 0, (name, check.stderr)
