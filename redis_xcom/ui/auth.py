"""Who is asking: the JWT of `Authorization: Bearer` or of the UI's `_token` cookie, checked by the
configured auth manager. Airflow's own DAG-access dependency then decides what that user may read.

Airflow's UI opens plugin pages in an iframe that sends only the `_token` cookie, and Airflow 3.0's
own `get_user` reads only the header; this resolver accepts both on every version, and the token
itself is validated by the auth manager (`get_user_from_token`), exactly as for Airflow's routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status

# The cookie Airflow's login sets (airflow.api_fastapi.auth.managers.base_auth_manager).
TOKEN_COOKIE = "_token"


def _token_of(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


async def current_user(request: Request) -> Any:
    """The authenticated user, or 401: no token, an expired one, or one the auth manager refuses."""
    from airflow.api_fastapi import app as airflow_app
    from jwt import ExpiredSignatureError, InvalidTokenError

    token = _token_of(request)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not authenticated: log in to Airflow, or send `Authorization: Bearer <token>` "
            "(POST /auth/token gives one)",
        )
    try:
        return await airflow_app.get_auth_manager().get_user_from_token(token)
    except ExpiredSignatureError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Token expired: log in to Airflow again") from None
    except InvalidTokenError:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid token: log in to Airflow again") from None
