"""Per-flavour login and stats behaviour: relax/autopilot tables and leaderboards (docs/rules.md
S67, S68), Ripple's locked state and TOTP check, the donor-expiry notice and the menu icon."""

from __future__ import annotations

import os
import subprocess
import time

from tests import client as C
from tests.conftest import PYTHON, REPO


def own_stats(client, timeout: float = 5.0):
    return C.wait_for(client, lambda p: p.id == C.USER_STATS and p.value.user_id == client.user_id, timeout=timeout).value


def set_stats(server, table: str, user_id: int, pp: int, playcount: int, acc: float = 95.0, mode: str = "std") -> None:
    server.db.execute(
        f"UPDATE {table} SET pp_{mode}=%s, playcount_{mode}=%s, avg_accuracy_{mode}=%s, ranked_score_{mode}=%s "
        f"WHERE id=%s", (pp, playcount, acc, pp * 1000, user_id))


def test_kawata_relax_stats_and_prefixes_s67_s68(server):
    a = server.new_user()
    set_stats(server, "users_stats", a.id, 1000, 10)
    set_stats(server, "users_stats_relax", a.id, 3000, 30)
    server.redis.zadd("ripple:leaderboard_relax:std", {str(a.id): 3000, "1": 99999})
    server.redis.zadd("ripple:leaderboard:std", {str(a.id): 1000})
    c = server.login(a)
    c.send(C.change_action(2, "x", "a" * 32, 128, 0, 1))
    stats = own_stats(c)
    assert (stats.text, stats.pp, stats.playcount, stats.mode) == ("[RX] x", 3000, 30, 0)
    assert stats.rank == 2  # behind the member with 99999 in the relax board
    c.send(C.change_action(1, "whatever", "", 0, 0, 0))  # AFK keeps relax
    stats = own_stats(c)
    assert (stats.text, stats.pp) == ("[RX]", 3000)
    c.send(C.change_action(0, "", "", 0, 0, 0))  # idle without relax: vanilla
    stats = own_stats(c)
    assert (stats.text, stats.pp, stats.playcount) == ("[VN]", 1000, 10)
    assert stats.rank >= 1
    c.send(C.change_action(2, "x", "", 8192, 0, 1))  # Kawata ignores autopilot
    stats = own_stats(c)
    assert (stats.text, stats.pp) == ("[VN] x", 1000)
    set_stats(server, "users_stats", a.id, 1111, 11, mode="mania")
    c.send(C.change_action(2, "m", "", 128, 3, 1))  # mania has no relax table
    stats = own_stats(c)
    assert (stats.mode, stats.pp, stats.text) == (3, 1111, "[RX] m")


def test_realistikosu_autopilot_stats_and_users_country(server, start_server):
    env = dict(os.environ, PEP_DB_DATABASE=server.db_name, PEP_STACK_FLAVOUR="realistikosu")
    res = subprocess.run([PYTHON, "pep.py", "init-db"], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    extra = start_server({"PEP_STACK_FLAVOUR": "realistikosu"})
    a = server.new_user()
    server.db.execute("INSERT IGNORE INTO ap_stats (id, username) VALUES (%s, %s)", (a.id, a.name))
    set_stats(server, "ap_stats", a.id, 4242, 42)
    server.db.execute("UPDATE users SET country='JP' WHERE id=%s", (a.id,))
    c = extra.login(a)
    presence = [p.value for p in c.login_result.packets if p.id == C.USER_PRESENCE and p.value.user_id == a.id][0]
    assert presence.country == 111  # JP, read from users.country on this flavour
    c.send(C.change_action(2, "y", "", 8192, 0, 1))
    stats = own_stats(c)
    assert (stats.text, stats.pp, stats.playcount) == ("[AP] y", 4242, 42)


def test_ripple_locked_account_and_totp(server, start_server):
    extra = start_server({"PEP_STACK_FLAVOUR": "ripple"})
    locked = server.new_user(privileges=1)  # public without normal: Ripple's "locked"
    res = extra.client().login(locked.name, locked.password)
    assert res.user_id == -4 and res.of(C.NOTIFICATION)
    totp = server.new_user()
    server.db.execute("INSERT INTO 2fa_totp (userid, enabled) VALUES (%s, 1)", (totp.id,))
    res = extra.client().login(totp.name, totp.password)
    assert res.user_id == -8  # TOTP on and this IP never seen for the user
    server.db.execute("INSERT INTO ip_user (userid, ip, occurencies) VALUES (%s, '127.0.0.1', 1)", (totp.id,))
    assert extra.client().login(totp.name, totp.password).user_id == totp.id
    # the kawata server has neither check
    assert server.client().login(locked.name, locked.password).user_id == locked.id


def test_donor_expiry_notice_and_menu_icon_at_login(server, start_server):
    donor = server.new_user(privileges=7)
    server.db.execute("UPDATE users SET donor_expire=%s WHERE id=%s", (int(time.time()) + 86400, donor.id))
    c = server.login(donor, drain=False)
    assert any("supporter status expires" in n for n in C.values(c.login_result.packets, C.NOTIFICATION))
    server.db.execute("UPDATE main_menu_icons SET is_current=0")
    server.db.execute("INSERT INTO main_menu_icons (is_current, file_id, name, url) VALUES (1, 'logo42', 'x', 'https://example.com')")
    try:
        extra = start_server({"PEP_STACK_MENU_ICON_BASE": "https://i.example"})
        c = extra.login(server.new_user(), drain=False)
        assert C.values(c.login_result.packets, C.MAIN_MENU_ICON) == ["https://i.example/logo42.png|https://example.com"]
    finally:
        server.db.execute("DELETE FROM main_menu_icons WHERE file_id='logo42'")
