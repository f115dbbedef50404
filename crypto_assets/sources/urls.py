"""Which server URLs the project will talk to: https anywhere, plain http only on this machine.

Over http a mirror's answers (prices, archive files and their CHECKSUMs) can be changed on the
way, and Snowflake's login and session token would cross the network readable. Loopback stays
allowed for the stand-ins the tests and local demos run.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class InsecureUrlError(ValueError):
    """A URL that would send requests in clear text to another machine, or is not a web URL."""


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, setting: str) -> str:
    """``url`` when it is https, or http to a loopback host; else an error naming ``setting``."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    if parts.scheme == "http":
        raise InsecureUrlError(
            f"{setting}={url!r}: plain http is allowed only to this machine (localhost,"
            " 127.0.0.0/8, ::1); use https."
        )
    raise InsecureUrlError(f"{setting}={url!r}: expected an https:// URL.")
