"""Small game enumerations: actions, modes, mods, login reply codes, presence filters (docs/protocol.md §3)."""

# actions (docs/protocol.md §3.1)
IDLE = 0
AFK = 1
PLAYING = 2
EDITING = 3
MODDING = 4
MULTIPLAYER = 5
WATCHING = 6
UNKNOWN = 7
TESTING = 8
SUBMITTING = 9
PAUSED = 10
LOBBY = 11
MULTIPLAYING = 12
OSU_DIRECT = 13

# game modes (docs/protocol.md §3.2)
STD = 0
TAIKO = 1
CTB = 2
MANIA = 3
MODE_SUFFIX = ("std", "taiko", "ctb", "mania")

# mods (docs/protocol.md §3.3), only those the server looks at
MOD_DOUBLETIME = 64
MOD_RELAX = 128
MOD_HALFTIME = 256
MOD_NIGHTCORE = 512
MOD_AUTOPILOT = 8192
SPEED_MODS = MOD_DOUBLETIME | MOD_HALFTIME | MOD_NIGHTCORE

# login reply codes (docs/protocol.md §3.5)
LOGIN_FAILED = -1
LOGIN_OLD_CLIENT = -2
LOGIN_BANNED = -3
LOGIN_INACTIVE = -4
LOGIN_ERROR = -5
LOGIN_NEEDS_SUPPORTER = -6
LOGIN_PASSWORD_RESET = -7
LOGIN_VERIFICATION = -8

# presence filter (packet 79)
FILTER_NONE = 0
FILTER_ALL = 1
FILTER_FRIENDS = 2

PROTOCOL_VERSION = 19
