"""Passwords out of URLs before they are shown: the one redaction every message, repr and command uses.

A URL is redacted as a person would type it, not only as RFC 3986 allows: a password may hold
``/ ? # @ :`` unencoded, and credentials may come as query parameters (``?password=...``, which
redis-py accepts), whose names are judged as the client reads them: percent-decoded and in any case
(``?%70assword=`` authenticates too). Anything that could be part of a password is replaced; when
unsure, more is hidden.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

MASK = "***"

# Query parameters that carry a credential (redis-py passes unknown ones to the connection as-is).
_SECRET_PARAMETER = re.compile(r"pass|secret|token|auth|credential|key$", re.IGNORECASE)
_PARAMETER = re.compile(r"([^&=;]*)=([^&;]*)")
# Enough to undo any encoding a person or a tool applies.
_DECODE_ROUNDS = 4


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
        rest = f"{user}:{MASK}@{rest[at + 1 :]}" if plain_user else f"{MASK}@{rest[at + 1 :]}"
    head, question, query = rest.partition("?")
    if question:
        rest = f"{head}?{_PARAMETER.sub(_mask_parameter, query)}"
    return f"{scheme}{sep}{rest}"


def _mask_parameter(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"{name}={MASK}" if is_secret_parameter(name) else match.group(0)


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter's name says it carries a credential, judged as the client reads it:
    percent-decoded (redis-py takes ``%70assword`` for ``password``) and in any case."""
    decoded = decoded_name(name)
    # Still encoded after that many rounds: nobody writes that by chance, so it is hidden.
    return decoded is None or bool(_SECRET_PARAMETER.search(name) or _SECRET_PARAMETER.search(decoded))


def decoded_name(name: str) -> str | None:
    """A query parameter's name percent-decoded until it no longer changes; None if it still does."""
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote_plus(name)
        if decoded == name:
            return name
        name = decoded
    return None


def unencoded_userinfo(url: str) -> bool:
    """True when an ``@`` comes after the host part ends: a user, password or query value holds
    an unencoded ``/ ? # @``, so the URL cannot be split where the writer meant."""
    rest = url.partition("://")[2] or url
    at = rest.rfind("@")
    if at < 0:
        return False
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    return at > end
