"""IP geolocation from a MaxMind-format database (geoip2), for the country flag and world map.

Sources: docs/integration.md §5 (K: a local MaxMind DB at each login; fallbacks XX and (0, 0)),
docs/schema.md §3.4 (the first known country is saved). ``[geo] database`` names the ``.mmdb`` file:
GeoLite2-City / GeoIP2-City (country and coordinates), GeoLite2-Country (country only; the
coordinates stay 0, 0), or any City/Country database in MaxMind format (DB-IP lite...). Empty =
no geolocation; the login then uses the stored country.

Lookups are in memory (the reader maps the file; maxminddb's C extension when present) and
take microseconds, so the login calls :meth:`Locator.lookup` directly. The file is reopened by
:meth:`Locator.reload` (SIGHUP / settings reload) when it changed on disk, so a weekly
``geoipupdate`` needs no restart.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from typing import Any

from constants.countries import country_index

log = logging.getLogger("pep.geo")


@dataclasses.dataclass(frozen=True)
class Location:
    """Where an address is: ``country`` two upper-case letters (never 'XX'), degrees."""

    country: str
    latitude: float = 0.0
    longitude: float = 0.0


class Locator:
    """A geoip2 reader over ``path``. Raises ``OSError`` / ``ValueError`` (maxminddb's
    ``InvalidDatabaseError`` is a ``RuntimeError``) when the file cannot be opened."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._reader: Any = None
        self._mtime = 0.0
        self._city = False
        self._open()

    def _open(self) -> None:
        import geoip2.database

        mtime = os.stat(self.path).st_mtime
        reader = geoip2.database.Reader(self.path)
        kind = reader.metadata().database_type
        old, self._reader = self._reader, reader
        self._city = "City" in kind or "city" in kind
        self._mtime = mtime
        if old is not None:
            old.close()
        log.info("geolocation database %s (%s)", self.path, kind)

    def reload(self) -> bool:
        """Reopen the file if it changed on disk; returns whether it was reopened. Errors are
        logged and the current reader is kept."""
        try:
            if os.stat(self.path).st_mtime == self._mtime:
                return False
            self._open()
            return True
        except Exception as exc:
            log.error("geolocation database %s could not be reloaded (keeping the old one): %s", self.path, exc)
            return False

    def lookup(self, ip: str) -> Location | None:
        """The location of ``ip`` (IPv4 or IPv6 text), or None when the address is malformed,
        private/unknown to the database, or has no usable country."""
        from geoip2.errors import AddressNotFoundError

        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            return None
        try:
            answer = self._reader.city(str(address)) if self._city else self._reader.country(str(address))
        except (AddressNotFoundError, ValueError, TypeError):
            return None
        except Exception as exc:  # a corrupt record: geolocation is best effort
            log.warning("geolocation of an address failed: %s", exc)
            return None
        code = (answer.country.iso_code or answer.registered_country.iso_code or "").upper()
        if len(code) != 2 or country_index(code) == 0:
            return None
        latitude = longitude = 0.0
        location = getattr(answer, "location", None)
        if location is not None:
            latitude = float(location.latitude or 0.0)
            longitude = float(location.longitude or 0.0)
        return Location(code, latitude, longitude)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def open_locator(path: str) -> Locator | None:
    """A :class:`Locator` for ``[geo] database``, or None when it is empty or cannot be opened.

    A configured file that cannot be opened is logged as an ERROR and the server runs with the
    stored countries: geolocation is not worth refusing logins over (docs/operations.md).
    """
    if not path:
        return None
    try:
        return Locator(path)
    except Exception as exc:
        log.error("geolocation database %s cannot be opened, using stored countries: %s", path, exc)
        return None


def locate(locator: Locator | None, ip: str) -> Location | None:
    """``locator.lookup(ip)``, or None without a locator or address."""
    if locator is None or not ip:
        return None
    return locator.lookup(ip)
