"""What the ops commands say when they cannot use Redis: one diagnosis (what is wrong, what to do)
per failure, whichever command met it, so that doctor, stats and clear say the same thing.

The first contact (first_contact) is made with a short connect timeout and no retries: a wrong
password, a server that is down or a TLS client at a plain-text port is reported in seconds, not
after the backend's retries (which stay as they are for the tasks). Nothing here talks about tasks,
and no message holds a password.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import quote

from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_xcom import connection
from redis_xcom.config import SECTION, URL_EXAMPLE, URL_FORMS, Settings, get_settings
from redis_xcom.errors import ConfigError, RedisUnavailableError, RedisXComError
from redis_xcom.ops.output import PROBLEM, Output
from redis_xcom.redaction import MASK, redact_url
from redis_xcom.storage import client as storage_client

# Seconds the first contact waits for a connection (TCP and the TLS handshake) and for PING's
# answer, when the configured timeouts are longer; a timeout then tries once more with those.
FIRST_CONTACT_TIMEOUT = 2.0
# Seconds a plain-text PING may take when checking whether a TLS-less Redis listens on a port.
SNIFF_TIMEOUT = 1.0

# What a Diagnosis is about (its ``problem``, for scripts reading --json).
CONFIG = "config"
WRONG_CREDENTIALS = "wrong-credentials"
NO_CREDENTIALS = "missing-credentials"
UNEXPECTED_CREDENTIALS = "unexpected-credentials"
NOT_TLS = "tls-mismatch"
TLS_REQUIRED = "tls-required"
TLS = "tls"
REFUSED = "connection-refused"
UNKNOWN_HOST = "unknown-host"
TIMEOUT = "timeout"
PERMISSION = "permission"
OTHER = "error"

_URL_OR_CONN = f"[{SECTION}] url (or the redis_conn_id connection)"


@dataclass(frozen=True)
class Diagnosis:
    problem: str
    message: str
    advice: str = ""
    cause: str = ""  # the library's own words (passwords masked), for --json and bug reports

    def document(self, command: str) -> dict[str, str]:
        return {
            "command": command,
            "problem": self.problem,
            "error": self.message,
            "advice": self.advice,
            "cause": self.cause,
        }


def report(out: Output, command: str, diagnosis: Diagnosis) -> int:
    """Say what went wrong and what to do (on stderr; with --json as the JSON document on stdout too)."""
    out.note(f"redis-xcom {command}: {diagnosis.message}")
    if diagnosis.advice:
        out.note(f"  -> {diagnosis.advice}")
    out.document(diagnosis.document(command))
    return PROBLEM


def load_settings() -> tuple[Settings | None, Diagnosis | None]:
    """The [redis_xcom] settings, their URL parsed as the client will parse it (an Airflow connection
    named by redis_conn_id is read); or why they cannot be used."""
    try:
        settings = get_settings()
        storage_client.parse_url(connection.resolve(settings).url, settings)
    except ConfigError as exc:
        return None, diagnose(exc)
    return settings, None


def reachable() -> tuple[Settings | None, Diagnosis | None]:
    """The settings and a first contact with their Redis: what every command checks before it
    starts, so a bad URL, a wrong password or a server that is down is said in seconds, one way."""
    settings, problem = load_settings()
    if settings is not None:
        problem = first_contact(settings)
    return settings, problem


def first_contact(settings: Settings) -> Diagnosis | None:
    """None when Redis answers PING (with the configured credentials and TLS), else why not."""
    quick = dataclasses.replace(
        settings,
        retry_attempts=0,
        socket_connect_timeout=min(settings.socket_connect_timeout, FIRST_CONTACT_TIMEOUT),
        socket_timeout=min(settings.socket_timeout, FIRST_CONTACT_TIMEOUT),
    )
    try:
        _ping(quick)
        return None
    except Exception as exc:
        diagnosis = diagnose(exc, settings)
    patient = (quick.socket_connect_timeout, quick.socket_timeout) != (
        settings.socket_connect_timeout,
        settings.socket_timeout,
    )
    if diagnosis.problem == TIMEOUT and patient:
        # A slow network: once more with the configured timeouts (still without retries).
        try:
            _ping(dataclasses.replace(settings, retry_attempts=0))
            return None
        except Exception as exc:
            return diagnose(exc, settings)
    return diagnosis


def _ping(settings: Settings) -> None:
    built = storage_client.build_client(settings)
    try:
        built.ping()
    finally:
        built.close()


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and the exceptions it was raised from or while handling (redis-py wraps socket errors)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _masked(text: str, settings: Settings | None) -> str:
    """text without the URL's password (a library may quote the URL, or the password alone)."""
    if settings is None or not settings.url:
        return text
    text = text.replace(settings.url, redact_url(settings.url))
    try:
        password = storage_client.parse_url(settings.url).password
    except ConfigError:
        return text
    for form in {password, quote(password or "", safe="")} - {None, ""}:
        text = text.replace(str(form), MASK)
    return text


def _target(settings: Settings | None) -> tuple[str, storage_client.Target | None]:
    """Where the settings point (host:port, never credentials), and the parsed URL."""
    if settings is None:
        return "Redis", None
    try:
        url = connection.resolve(settings).url
        return f"Redis at {storage_client.endpoint(url)}", storage_client.parse_url(url, settings)
    except ConfigError:
        return "Redis", None


def _speaks_plain_text(hosts: tuple[tuple[str, int], ...]) -> bool:
    """Whether a Redis answers a plain-text PING at one of hosts (+PONG, or -NOAUTH with a password)."""
    for host, port in hosts[:3]:
        try:
            with socket.create_connection((host, port), timeout=SNIFF_TIMEOUT) as sock:
                sock.settimeout(SNIFF_TIMEOUT)
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            continue
        if reply[:1] in (b"+", b"-"):
            return True
    return False


def _speaks_tls(hosts: tuple[tuple[str, int], ...]) -> bool:
    """Whether a TLS server completes a handshake (certificates unchecked) at one of hosts."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for host, port in hosts[:3]:
        try:
            with (
                socket.create_connection((host, port), timeout=SNIFF_TIMEOUT) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                return True
        except ssl.SSLError as exc:
            if "alert" in str(exc).lower():  # a TLS server refusing us (no client certificate)
                return True
        except OSError:
            continue
    return False


def diagnose(exc: BaseException, settings: Settings | None = None) -> Diagnosis:
    """What exc (raised while using the Redis of settings) means for the person at the terminal."""
    chain = _chain(exc)
    config_error = next((e for e in chain if isinstance(e, ConfigError)), None)
    if config_error is not None:
        message = _masked(str(config_error), settings)
        advice = f"fix the option it names (airflow.cfg [{SECTION}] or AIRFLOW__REDIS_XCOM__<OPTION>)"
        if " url " in message or "redis_conn_id" in message:
            advice = (
                f"fix [{SECTION}] url (AIRFLOW__REDIS_XCOM__URL) or the redis_conn_id connection; "
                f"a URL is written {URL_FORMS}, e.g. {URL_EXAMPLE}"
            )
        return Diagnosis(CONFIG, message, advice)
    where, target = _target(settings)
    library = [e for e in chain if not isinstance(e, RedisXComError)] or chain
    cause = _masked(str(library[0]), settings).rstrip(".")
    # The library's words only: our own messages (a RedisXComError of the store) name options and
    # advice of their own that would read as symptoms here.
    words = " ".join(str(e) for e in chain if not isinstance(e, RedisXComError)).lower()
    auth = any(isinstance(e, AuthenticationError) for e in chain)
    if "without any password configured" in words or "no password is set" in words:
        return Diagnosis(
            UNEXPECTED_CREDENTIALS,
            f"{where} requires no password, and {_URL_OR_CONN} gives one",
            f"remove the password from {_URL_OR_CONN}, or set requirepass (or an ACL user) on the server",
            cause,
        )
    if "wrongpass" in words or "invalid username-password" in words or "invalid password" in words:
        return Diagnosis(
            WRONG_CREDENTIALS,
            f"{where} refused the user and password",
            f"check the user and password in {_URL_OR_CONN}: they must match the server's requirepass "
            "or ACL user; write them percent-encoded, e.g. redis://user:p%40ss@host:6379/0",
            cause,
        )
    if auth or "noauth" in words or "authentication required" in words or "authenticated" in words:
        return Diagnosis(
            NO_CREDENTIALS,
            f"{where} requires a password, and {_URL_OR_CONN} gives none",
            f"put the password in {_URL_OR_CONN}: redis://:PASSWORD@host:6379/0, or "
            "redis://USER:PASSWORD@host:6379/0 for an ACL user (percent-encoded)",
            cause,
        )
    tls = target is not None and target.uses_tls
    ssl_error = any(isinstance(e, ssl.SSLError) for e in chain) or "ssl" in words
    timed_out = any(isinstance(e, RedisTimeoutError | socket.timeout | TimeoutError) for e in chain)
    handshake = (ssl_error or timed_out) and "certificate" not in words
    if target is not None and tls and handshake and _speaks_plain_text(target.hosts):
        return Diagnosis(
            NOT_TLS,
            f"{where} does not speak TLS on that port: a Redis answers there in plain text",
            f"use redis:// (not rediss://) in {_URL_OR_CONN} for this port, or point it at the "
            "server's tls-port",
            cause,
        )
    closed = any(text in words for text in ("closed by server", "connection reset", "reset by peer"))
    if target is not None and not tls and (closed or timed_out) and _speaks_tls(target.hosts):
        return Diagnosis(
            TLS_REQUIRED,
            f"{where} speaks TLS on that port, and {_URL_OR_CONN} does not",
            f"use rediss:// (not redis://) in {_URL_OR_CONN}, with [{SECTION}] ssl_ca_certs naming "
            "the CA that signed the server's certificate",
            cause,
        )
    if ssl_error:
        return Diagnosis(
            TLS,
            f"{where} failed the TLS handshake: {cause}",
            f"check [{SECTION}] ssl_ca_certs (the CA that signed the server's certificate), "
            "ssl_check_hostname (the host must be in the certificate's names), and ssl_certfile / "
            "ssl_keyfile if the server requires a client certificate",
            cause,
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in words:
        return Diagnosis(
            REFUSED,
            f"{where} refused the connection: nothing listens there",
            f"start Redis there, or fix the host and port in {_URL_OR_CONN}",
            cause,
        )
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        text in words
        for text in ("name or service not known", "nodename nor servname", "name resolution", "no address")
    ):
        return Diagnosis(
            UNKNOWN_HOST,
            f"{where}: the host name does not resolve",
            f"fix the host in {_URL_OR_CONN} (a name this machine's DNS knows, or an IP address)",
            cause,
        )
    if timed_out or "timeout" in words or "timed out" in words:
        seconds = settings.socket_connect_timeout if settings else None
        within = f" within {seconds:g} s (socket_connect_timeout)" if seconds else ""
        hint = " (if the server speaks TLS there, use rediss://)" if not tls else ""
        return Diagnosis(
            TIMEOUT,
            f"{where} did not answer{within}",
            f"check the host and port in {_URL_OR_CONN}{hint}, and that no firewall or security group "
            f"drops the connection; on a slow network raise [{SECTION}] socket_connect_timeout",
            cause,
        )
    if any(isinstance(e, NoPermissionError) for e in chain):
        return Diagnosis(
            PERMISSION,
            f"{where} refused a command to this user: {cause}",
            "grant the user the command it names (ACL SETUSER <user> +<command>); redis-xcom doctor "
            "lists every command the backend needs",
            cause,
        )
    if isinstance(exc, RedisXComError) and not isinstance(exc, RedisUnavailableError):
        # Not about the connection: the store's own message says what failed.
        return Diagnosis(OTHER, _masked(str(exc), settings), "", cause)
    hint = " If the server speaks TLS on that port, use rediss://." if closed and not tls else ""
    return Diagnosis(
        OTHER,
        f"{where} failed: {_masked(str(exc), settings).rstrip('.')}",
        f"check that Redis runs there and that {_URL_OR_CONN} points at it.{hint}".rstrip("."),
        cause,
    )
