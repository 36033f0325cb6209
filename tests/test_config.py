"""Configuration: defaults, the shipped config.ini, PEP_* overrides and validation."""

import os

import pytest

from helpers import config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shipped_config_is_the_documented_default():
    cfg = config.load(os.path.join(REPO, "config.ini"), environ={})
    assert cfg.server.port == 5001
    assert cfg.db.database == "ripple"
    assert cfg.stack.flavour == "kawata"
    assert cfg.sessions.timeout == 100
    assert cfg.redis.key_prefix == ""


def test_environment_overrides_every_section(tmp_path):
    env = {"PEP_DB_DATABASE": "ripple_test", "PEP_SERVER_PORT": "5011", "PEP_REDIS_DB": "3",
           "PEP_SERVER_GZIP": "0", "PEP_SESSIONS_TIMEOUT": "2.5", "PEP_STACK_FLAVOUR": "ripple"}
    cfg = config.load(os.path.join(REPO, "config.ini"), environ=env)
    assert (cfg.db.database, cfg.server.port, cfg.redis.db) == ("ripple_test", 5011, 3)
    assert cfg.server.gzip is False
    assert cfg.sessions.timeout == 2.5
    assert cfg.stack.flavour == "ripple"


@pytest.mark.parametrize("env, fragment", [
    ({"PEP_SERVER_PORT": "http"}, "[server] port"),
    ({"PEP_SERVER_PORT": "70000"}, "between"),
    ({"PEP_SERVER_GZIP": "maybe"}, "boolean"),
    ({"PEP_STACK_FLAVOUR": "akatsuki"}, "flavour"),
    ({"PEP_LOG_LEVEL": "LOUD"}, "level"),
])
def test_bad_values_are_refused_with_the_key_named(env, fragment):
    with pytest.raises(config.ConfigError) as err:
        config.load(None, environ=env)
    assert fragment in str(err.value)


def test_unknown_keys_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "c.ini"
    path.write_text("[server]\nprot = 5001\n")
    with pytest.raises(config.ConfigError, match="unknown key"):
        config.load(str(path), environ={})
    path.write_text("[servre]\nport = 5001\n")
    with pytest.raises(config.ConfigError, match="unknown section"):
        config.load(str(path), environ={})
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(str(tmp_path / "missing.ini"), environ={})
