"""Protocol layouts of the osu! client builds the server speaks (b20121203 to today).

A :class:`Layout` says, for one range of client builds, how every packet whose wire format
changed since b20121203 is laid out: the protocol number sent in packet 75, the match slot
count, the match, score-frame and spectator-bundle fields, the pp width of the stats, the
message sender id, the user-quit form and which server packets the build knows. A session
gets its layout at login from the build date of its version string
(:func:`layout_for_build`); the codec writers and readers take it as their ``layout``
argument (None or :data:`MODERN` = the layout of b20250306 and newer).

Source of the facts: the client classes of the PyPI library chio 1.1.21
(``chio/clients/b*.py``: one class per protocol change) and docs/protocol.md §9.1,
which tabulates them.

Encoding caches key on the *variant* of a layout for one kind of packet (``layout.v[KIND]``),
not on the layout itself: two builds whose stats are identical share one encoded stats packet
even when their matches differ. Variant 0 is always the modern form.
"""

from __future__ import annotations

#: kinds of layout-dependent packets, indices into :attr:`Layout.v`
STATS = 0  # 11 user stats (pp width)
MESSAGE = 1  # 7 / 88 / 100 / 101 message struct (sender id)
MATCH = 2  # 26 / 27 / 36 / 46 match struct (slots, freemod, slot mods, seed)
SCORE = 3  # 48 score frame (score v2 tail)
FRAMES = 4  # 15 spectator frame bundle (extra, sequence, score frame)
TITLE = 5  # 76 main menu icon ("image|url" or image only)
QUIT = 6  # 12 user quit (i32 id, u8 state; a stats struct before b20121224)
KINDS = 7

#: the oldest build date any layout covers (chio's b20121203 class)
OLDEST_BUILD = 20121203
#: first build that polls over HTTP (older builds use raw TCP; issue 15)
FIRST_HTTP_BUILD = 20130816

# server packet ids (constants/packets.py) that only exist from some build on (chio: the
# first class implementing the writer)
_SINCE = {
    94: 20121212,  # UserSilenced
    95: 20121224, 96: 20121224,  # presence single / bundle
    100: 20130131,  # UserDmsBlocked
    101: 20130209,  # TargetIsSilenced
    102: 20130509,  # VersionUpdateForced
    103: 20130604,  # SwitchServer
    104: 20140716,  # AccountRestricted
    105: 20140731,  # RTX
    106: 20141104, 107: 20141104,  # MatchAbort, SwitchTournamentServer
}
#: client packet ids that only exist from some build on (chio: the first reader)
_CLIENT_SINCE = {
    93: 20121207,  # tournament match info
    97: 20121224, 98: 20121224,  # presence requests
    99: 20130131,  # toggle friend-only DMs
    108: 20151107, 109: 20151107,  # tournament match channel join / leave
}


class Layout:
    """The wire layout of one range of client builds (immutable; compare with ``is``).

    Fields (all read-only by convention):

    * ``build``: first build date of the range (a chio breakpoint, e.g. 20121203);
      ``name``: ``"b" + build``; ``index``: position in :data:`LAYOUTS` (0 = oldest).
    * ``protocol``: the i32 sent in packet 75 (13 .. 19).
    * ``slots``: match slot count on the wire, 8 (before b20140528) or 16.
    * ``match_freemod`` (u8 freemod, b20130118+), ``match_slot_mods`` (u32 x slots when
      freemod, b20130303+), ``match_seed`` (u32 seed, b20130418+).
    * ``score_v2``: score frames carry ``bool using_scorev2`` (+ two f64) (b20151106+; before:
      28 bytes, no flag).
    * ``frames_extra``: the bundle starts with ``i32 extra`` (b20130418+);
      ``frames_sequence``: it ends with ``u16 sequence`` (b20160404+).
    * ``pp_unsigned``: pp in 11 is u16 (b20250306+); before it is i16, so the server clamps
      pp to 0..32767 (what chio's writer does; a larger value would read as negative).
    * ``message_sender_id``: the message struct ends with ``i32 sender_id`` (b20121225+).
    * ``quit_struct``: 12 is ``i32 id, u8 state`` (b20121224+); before it is a stats struct.
    * ``presence_bundle``: 95 / 96 / 97 / 98 exist (b20121224+).
    * ``title_pair``: 76 carries ``"image|url"`` (b20121221+); before only the image URL.
    * ``legacy_links``: chat links are written ``(text)[url]`` (before b20121212), not
      ``[url text]``.
    * ``v``: tuple of the variant of each packet kind (:data:`STATS` ...), 0 = modern form;
      ``modern``: every variant is 0 (the layout of b20250306 and newer).
    """

    __slots__ = ("build", "name", "index", "protocol", "slots", "match_freemod", "match_slot_mods",
                 "match_seed", "score_v2", "frames_extra", "frames_sequence", "pp_unsigned",
                 "message_sender_id", "quit_struct", "presence_bundle", "title_pair", "legacy_links", "v", "modern",
                 "_server", "_client")

    def __init__(self, build: int, protocol: int, index: int = 0) -> None:
        self.build = build
        self.name = f"b{build}"
        self.index = index
        self.protocol = protocol
        self.slots = 16 if build >= 20140528 else 8
        self.match_freemod = build >= 20130118
        self.match_slot_mods = build >= 20130303
        self.match_seed = build >= 20130418
        self.score_v2 = build >= 20151106
        self.frames_extra = build >= 20130418
        self.frames_sequence = build >= 20160404
        self.pp_unsigned = build >= 20250306
        self.message_sender_id = build >= 20121225
        self.quit_struct = build >= 20121224
        self.presence_bundle = build >= 20121224
        self.title_pair = build >= 20121221
        self.legacy_links = build < 20121212
        match_v = (0 if self.slots == 16 else 1 + (not self.match_seed) + (not self.match_slot_mods)
                   + (not self.match_freemod))
        frames_v = (0 if self.frames_sequence else 1) + (0 if self.frames_extra else 1) + (
            0 if self.score_v2 else 2)
        self.v = (0 if self.pp_unsigned else 1,
                  0 if self.message_sender_id else (1 if not self.legacy_links else 2), match_v,
                  0 if self.score_v2 else 1, frames_v, 0 if self.title_pair else 1,
                  0 if self.quit_struct else 1)
        self.modern = not any(self.v)
        self._server = frozenset(pid for pid, since in _SINCE.items() if build < since)
        self._client = frozenset(pid for pid, since in _CLIENT_SINCE.items() if build < since)

    def knows(self, server_packet_id: int) -> bool:
        """Whether builds of this layout know server packet ``server_packet_id`` (chio has a
        writer for it in the layout's class). Packets older than b20121203 always count as known."""
        return server_packet_id not in self._server

    def sends(self, client_packet_id: int) -> bool:
        """Whether builds of this layout can send client packet ``client_packet_id``."""
        return client_packet_id not in self._client

    def __repr__(self) -> str:
        return f"<Layout {self.name} protocol {self.protocol} {self.slots} slots>"


#: chio's breakpoints from b20121203 on, with the protocol number the server sends in 75.
#: b20140528-b20150914 get 19 (not chio's default 18): 19 switches them to 16-slot matches,
#: as on the official server (docs/decisions.md "Old client builds").
_BREAKPOINTS = (
    (20121203, 13), (20121207, 13), (20121211, 13), (20121212, 13), (20121221, 13),
    (20121224, 13), (20121225, 15), (20130118, 16), (20130131, 16), (20130209, 16),
    (20130303, 17), (20130418, 18), (20130509, 18), (20130604, 18), (20130801, 18),
    (20140528, 19), (20140716, 19), (20140731, 19), (20141104, 19), (20150826, 19),
    (20150915, 19), (20151106, 19), (20151107, 19), (20160404, 19), (20161101, 19),
    (20250306, 19),
)

#: every layout, oldest first
LAYOUTS: tuple[Layout, ...] = tuple(Layout(b, p, i) for i, (b, p) in enumerate(_BREAKPOINTS))
#: the layout of b20250306 and newer
MODERN: Layout = LAYOUTS[-1]
#: the breakpoint build dates, oldest first
BREAKPOINTS: tuple[int, ...] = tuple(b for b, _ in _BREAKPOINTS)


def layout_for_build(build: int) -> Layout | None:
    """The layout of client build ``build`` (a date like 20250306): the newest breakpoint
    not after it. None for builds before :data:`OLDEST_BUILD` (not supported). Builds newer
    than every breakpoint (e.g. 20991231) get :data:`MODERN`."""
    if build < OLDEST_BUILD:
        return None
    found = LAYOUTS[0]
    for layout in LAYOUTS:
        if layout.build > build:
            break
        found = layout
    return found


def is_tcp_build(build: int) -> bool:
    """Whether client build ``build`` connects over raw TCP (b20121203 .. b20130815) rather
    than polling over HTTP (issue 15; the layout does not depend on the transport)."""
    return build < FIRST_HTTP_BUILD
