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
