"""Passwords out of URLs before they are shown: the one redaction every message, repr and command uses.

A URL is redacted as a person would type it, not only as RFC 3986 allows: a password may hold
``/ ? # @ :`` unencoded, and credentials may come as query parameters (``?password=...``, which
redis-py accepts). Anything that could be part of a password is replaced; when unsure, more is hidden.
"""

from __future__ import annotations

import re

MASK = "***"

# Query parameters that carry a credential (redis-py passes unknown ones to the connection as-is).
_SECRET_PARAMETER = re.compile(r"pass|secret|token|auth|credential|key$", re.IGNORECASE)
_PARAMETER = re.compile(r"([^&=;]*)=([^&;]*)")


def redact_url(url: str) -> str:
    """The URL with every password replaced by ``***``, safe to log or put in an error.

    Works on every form: user and password, password only, multi-host URLs (cluster seeds,
    Sentinels), unencoded ``/ ? # @`` in the password, and credentials in the query string.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0:
        # Everything before the last @ is user information, whatever it holds (an unencoded '/'
        # or '#' in a password would otherwise end the host part early and leave the rest shown).
        user, colon, _secret = rest[:at].partition(":")
        plain_user = bool(colon) and not any(c in user for c in "/?#")
        rest = f"{user}:{MASK}@{rest[at + 1:]}" if plain_user else f"{MASK}@{rest[at + 1:]}"
    head, question, query = rest.partition("?")
    if question:
        rest = f"{head}?{_PARAMETER.sub(_mask_parameter, query)}"
    return f"{scheme}{sep}{rest}"


def _mask_parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={MASK}" if _SECRET_PARAMETER.search(name) else match.group(0)


def unencoded_userinfo(url: str) -> bool:
    """True when an ``@`` comes after the host part ends: a user, password or query value holds
    an unencoded ``/ ? # @``, so the URL cannot be split where the writer meant."""
    rest = url.partition("://")[2] or url
    at = rest.rfind("@")
    if at < 0:
        return False
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return at > end
