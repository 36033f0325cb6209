"""Mod bits (docs/protocol.md "mods") and their two-letter names, the one table used by the bot's
``/np``, ``!with`` and ``!mp`` answers."""

NF, EZ, TD, HD, HR, SD, DT, RX, HT, NC, FL, SO, AP, PF = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096,
                                                          8192, 16384)
FI = 1048576

#: the order in which names are written (osu!'s: NF EZ HD HR DT HT FL SO, with the others placed
#: next to their kin)
READABLE = (("NF", NF), ("EZ", EZ), ("HD", HD), ("HR", HR), ("SD", SD), ("PF", PF), ("NC", NC), ("DT", DT),
            ("HT", HT), ("FL", FL), ("FI", FI), ("SO", SO), ("RX", RX), ("AP", AP))


def names(mods: int) -> str:
    """``HDHR``-style letters of ``mods`` (an int bit set) in :data:`READABLE` order; NC hides
    DT and PF hides SD (each implies the other); '' for none."""
    out = []
    for name, bit in READABLE:
        if not mods & bit:
            continue
        if name == "DT" and mods & NC or name == "SD" and mods & PF:
            continue
        out.append(name)
    return "".join(out)
