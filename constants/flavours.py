"""What differs between the Ripple, Kawata and RealistikOsu stacks (docs/schema.md §2.5, §6).

One :class:`Flavour` per ``[stack] flavour`` value. Table and key names here are the only SQL
identifiers that are ever formatted into a query, and they come from this fixed table, never
from input.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Flavour:
    name: str
    # stats tables: vanilla, relax, autopilot (None = not supported, vanilla is used)
    stats_vanilla: str
    stats_relax: str | None
    stats_autopilot: str | None
    # every stats table a new user needs a row in
    stats_tables: tuple[str, ...]
    # Redis leaderboard keys, formatted with mode suffix m (std, taiko, ctb, mania)
    board_vanilla: str
    board_relax: str | None
    board_autopilot: str | None
    # where the country lives: "users_stats" or "users"
    country_table: str
    # how admins are recognised: "groups" (privileges_groups names), "exact" (preset values)
    admin_rule: str
    # whether the status text gets a [VN]/[RX]/[AP] prefix and relax switches stats
    relax_prefix: bool
    # login checks only Ripple makes: locked accounts, TOTP 2FA, password_version 1
    ripple_checks: bool
    # write users.osuver at login
    writes_osuver: bool
    # default bot name when the database has none
    bot_name: str


FLAVOURS: dict[str, Flavour] = {
    "ripple": Flavour(
        name="ripple", stats_vanilla="users_stats", stats_relax="users_stats_relax",
        stats_autopilot=None, stats_tables=("users_stats", "users_stats_relax"),
        board_vanilla="ripple:leaderboard:{m}", board_relax="ripple:leaderboard:{m}:relax",
        board_autopilot=None, country_table="users_stats", admin_rule="groups",
        relax_prefix=False, ripple_checks=True, writes_osuver=False, bot_name="FokaBot",
    ),
    "kawata": Flavour(
        name="kawata", stats_vanilla="users_stats", stats_relax="users_stats_relax",
        stats_autopilot=None, stats_tables=("users_stats", "users_stats_relax", "ap_stats"),
        board_vanilla="ripple:leaderboard:{m}", board_relax="ripple:leaderboard_relax:{m}",
        board_autopilot=None, country_table="users_stats", admin_rule="exact",
        relax_prefix=True, ripple_checks=False, writes_osuver=True, bot_name="FokaBot",
    ),
    "realistikosu": Flavour(
        name="realistikosu", stats_vanilla="users_stats", stats_relax="rx_stats",
        stats_autopilot="ap_stats", stats_tables=("users_stats", "rx_stats", "ap_stats"),
        board_vanilla="ripple:leaderboard:{m}", board_relax="ripple:leaderboard_relax:{m}",
        board_autopilot="ripple:leaderboard_ap:{m}", country_table="users", admin_rule="exact",
        relax_prefix=True, ripple_checks=False, writes_osuver=True, bot_name="RealistikBot",
    ),
}
