"""The login body parser (docs/protocol.md §1.2): strict, and every refusal has the right reply code."""

import pytest

from constants import game
from services import login

L01 = (b"TestUser\n5f4dcc3b5aa765d61d8327deb882cf99\n"
       b"b20250306.2|1|0|acbf40239e58ea9552fa67d59d05097b:00-15-5D-01-02-03.0A-00-27-00-00-0B.:"
       b"0132645128a578f21f4448a8e54f6836:d546ce5c072ea00c75fd1acc39dab367:"
       b"d0bf6a7bda0f4fae305040a29bf4cc04:|0\n")


def test_vector_l01():
    req = login.parse(L01)
    assert req.username == "TestUser"
    assert req.password_md5 == "5f4dcc3b5aa765d61d8327deb882cf99"
    assert (req.version, req.build, req.utc_offset) == ("b20250306.2", 20250306, 1)
    assert req.adapters == "00-15-5D-01-02-03.0A-00-27-00-00-0B."
    assert req.adapters_md5 == "0132645128a578f21f4448a8e54f6836"
    assert req.uninstall_md5 == "d546ce5c072ea00c75fd1acc39dab367"
    assert req.disk_md5 == "d0bf6a7bda0f4fae305040a29bf4cc04"
    assert req.block_nonfriend_pm is False
    assert not req.tournament and not req.wine


def test_crlf_non_ascii_name_tourney_and_block_flag():
    body = L01.replace(b"TestUser", "Tëst User".encode()).replace(b"\n", b"\r\n")
    body = body.replace(b"b20250306.2", b"b20231030.1tourney").replace(b"|0\r\n", b"|1\r\n")
    req = login.parse(body)
    assert req.username == "Tëst User"
    assert req.tournament and req.block_nonfriend_pm


@pytest.mark.parametrize("body, code", [
    (b"", game.LOGIN_FAILED),
    (b"user\nmd5\n", game.LOGIN_FAILED),
    (L01.replace(b"5f4dcc3b5aa765d61d8327deb882cf99", b"password"), game.LOGIN_FAILED),
    (L01.replace(b"TestUser", b"x" * 31), game.LOGIN_FAILED),
    (L01.replace(b"b20250306.2", b"b20121202"), game.LOGIN_OLD_CLIENT),
    (L01.replace(b"b20250306.2", b"bxyz"), game.LOGIN_OLD_CLIENT),
    (L01.replace(b"b20250306.2", b"1.0"), game.LOGIN_OLD_CLIENT),
    (L01.replace(b"|1|0|", b"|one|0|"), game.LOGIN_FAILED),
    (b"TestUser\n5f4dcc3b5aa765d61d8327deb882cf99\nb20250306|1|0\n", game.LOGIN_OLD_CLIENT),
    (b"TestUser\n5f4dcc3b5aa765d61d8327deb882cf99\nb20250306|1|0|a:b:\n", game.LOGIN_OLD_CLIENT),
    (b"\xff\xfe" * 3000, game.LOGIN_FAILED),
])
def test_malformed_bodies_are_refused_with_a_code(body, code):
    with pytest.raises(login.LoginError) as err:
        login.parse(body)
    assert err.value.code == code


def test_utc_offset_is_clamped_to_the_presence_byte():
    assert login.parse(L01.replace(b"|1|0|", b"|-99|0|")).utc_offset == -24
    assert login.parse(L01.replace(b"|1|0|", b"|99|0|")).utc_offset == 24


# ------------------------------------------------------------------ reasons, boundaries, fields
BASE = b"TestUser\n5f4dcc3b5aa765d61d8327deb882cf99\n"


@pytest.mark.parametrize("body, code, notice, reason", [
    (b"x" * (login.MAX_BODY + 1), game.LOGIN_FAILED, "", "login body too large"),
    (b"user\nmd5", game.LOGIN_FAILED, "", "login body has fewer than three lines"),
    (L01.replace(b"TestUser", b" "), game.LOGIN_FAILED, "", "bad username"),
    (L01.replace(b"TestUser", b"x" * 31), game.LOGIN_FAILED, "", "bad username"),
    (L01.replace(b"5f4dcc3b5aa765d61d8327deb882cf99", b"password"), game.LOGIN_FAILED, "", "password is not an md5"),
    (BASE + b"b20250306|1|0\n", game.LOGIN_OLD_CLIENT, login.NOTICE_OLD, "client info has fewer than four fields"),
    (L01.replace(b"b20250306.2", b"b20121202"), game.LOGIN_OLD_CLIENT, login.NOTICE_OLD,
     "unsupported client version 'b20121202'"),
    (L01.replace(b"b20250306.2", b"b" + b"9" * 40), game.LOGIN_OLD_CLIENT, login.NOTICE_OLD,
     "unsupported client version 'b" + "9" * 31 + "'"),
    (L01.replace(b"|1|0|", b"|one|0|"), game.LOGIN_FAILED, "", "utc offset is not a number"),
    (BASE + b"b20250306|1|0|a:b:c::\n", game.LOGIN_OLD_CLIENT, login.NOTICE_OLD, "fewer than four client hashes"),
])
def test_refusals_say_why(body, code, notice, reason):
    with pytest.raises(login.LoginError) as err:
        login.parse(body)
    assert (err.value.code, err.value.notice, err.value.reason, str(err.value)) == (code, notice, reason, reason)


def test_boundaries_that_are_accepted():
    # no newline after the third line; a 30-character name; exactly four fields and four hashes;
    # the oldest supported build; an empty utc offset
    body = b"x" * 30 + b"\n5f4dcc3b5aa765d61d8327deb882cf99\nb%d||0|osu:adp:amd5:umd5" % login.MIN_BUILD
    req = login.parse(body)
    assert req.username == "x" * 30 and req.build == login.MIN_BUILD and req.utc_offset == 0
    assert (req.osu_md5, req.adapters, req.adapters_md5, req.uninstall_md5, req.disk_md5) == (
        "osu", "adp", "amd5", "umd5", "")
    assert req.block_nonfriend_pm is False


def test_fields_are_cut_to_their_sizes():
    long = "0123456789abcdef" * 3  # 48 characters
    hashes = f"{long}:{'a' * 1100}:{long}:{long}:{long}:"
    req = login.parse(BASE + f"b20250306.2|0|0|{hashes}|0\n".encode())
    assert (req.osu_md5, req.adapters_md5, req.uninstall_md5, req.disk_md5) == (long[:32],) * 4
    assert req.adapters == "a" * 1024


def test_line_ends_and_odd_bytes():
    # CRLF with a four-field info line: the last hash keeps no carriage return
    req = login.parse(b"MAX\r\n5f4dcc3b5aa765d61d8327deb882cf99\r\nb20250306.2|1|0|osu:adp:amd5:umd5:dmdX\r\n")
    assert req.username == "MAX" and req.disk_md5 == "dmdX"
    # bytes that are not UTF-8 become U+FFFD instead of failing the parse
    req = login.parse(L01.replace(b"TestUser", b"Test\xffUser"))
    assert req.username == "Test\ufffdUser"
    # a hash list with an empty first hash keeps the positions
    req = login.parse(BASE + b"b20250306.2|1|0|:adp:amd5:umd5:dmd5:|0\n")
    assert (req.osu_md5, req.adapters, req.disk_md5) == ("", "adp", "dmd5")


def test_login_error_defaults():
    plain = login.LoginError(game.LOGIN_FAILED)
    assert (str(plain), plain.notice, plain.reason, plain.restart_ms, plain.flood_key) == ("-1", "", "", None, "")
    noticed = login.LoginError(game.LOGIN_FAILED, "a notice")
    assert (str(noticed), noticed.reason) == ("a notice", "a notice")
    both = login.LoginError(game.LOGIN_BANNED, "a notice", "a reason")
    assert (str(both), both.notice, both.reason) == ("a reason", "a notice", "a reason")
    from helpers import codec
    assert plain.response() == codec.login_reply(game.LOGIN_FAILED)
    assert noticed.response() == codec.notification("a notice") + codec.login_reply(game.LOGIN_FAILED)
    assert login.LoginError(-1, restart_ms=1500).response() == codec.restart(1500)
