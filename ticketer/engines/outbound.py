"""Outbound HTTP: every request Ticketer makes to another server goes through `exchange()` here.

Today the webhook and RapidPro engines use it; pulling messages from RapidPro, Weni callbacks and
media downloads must too. Two rules hold for every exchange:

- **Targets.** A connection to a loopback, link-local, private or otherwise non-public address is
  refused unless its host is listed in `ENGINE_ALLOWED_HOSTS` (a name, an address or a network):
  an admin's webhook URL must not become a way to read the desk's internal network. The check runs
  for every connection, so for every redirect too, before connecting (on the addresses DNS gives)
  and again on the address actually connected to (a name that resolves differently the second
  time is still caught).
- **A deadline for the whole exchange** (connect, send, every redirect, the whole answer).
  requests' timeout is per socket read, so a server trickling one byte at a time could hold a send
  for ever; a timer shuts the exchange's connections down when its deadline passes.

Answers are the caller's to read, but what is stored or shown of a failure is only `status_line()`
and `reason()`: never the body of an answer (it may be an internal page).
"""

import ipaddress
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
import requests.adapters
from flask import current_app, has_app_context
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

USER_AGENT = "Ticketer"
MAX_REDIRECTS = 5
REASON_MAX_LENGTH = 160

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """The target is not a public address and its host is not in ENGINE_ALLOWED_HOSTS."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DeadlineExceeded(Exception):
    """The exchange had no complete answer within its deadline."""

    def __init__(self, seconds: float):
        super().__init__(f"no complete answer within the {seconds:g} s deadline")
        self.message = str(self)


@dataclass(frozen=True)
class AllowedHosts:
    """Hosts that may be internal: names (exact, any case), addresses, networks (10.0.0.0/8)."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, value: str | Iterable[str] | None) -> "AllowedHosts":
        items = value.replace(",", " ").split() if isinstance(value, str) else list(value or [])
        return _parse(tuple(item.strip() for item in items if item.strip()))

    def allows(self, host: str, address: Address | None = None) -> bool:
        if host.lower().rstrip(".").strip("[]") in self.names:
            return True
        return address is not None and any(address in network for network in self.networks)


@lru_cache(maxsize=32)
def _parse(items: tuple[str, ...]) -> AllowedHosts:
    names, networks = set(), []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            names.add(item.lower().rstrip("."))
    return AllowedHosts(frozenset(names), tuple(networks))


@dataclass(frozen=True)
class Policy:
    """What an exchange may reach and how long it may take."""

    allowed_hosts: AllowedHosts = AllowedHosts()
    deadline_seconds: float = 20.0

    @classmethod
    def from_config(cls, config) -> "Policy":
        return cls(
            allowed_hosts=AllowedHosts.parse(config.get("ENGINE_ALLOWED_HOSTS", "")),
            deadline_seconds=float(config.get("DISPATCH_HTTP_TIMEOUT_SECONDS", cls.deadline_seconds)),
        )


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _kind(address: Address) -> str:
    if address.is_loopback:
        return "a loopback"
    if address.is_link_local:
        return "a link-local"
    if address.is_private:
        return "a private"
    return "a non-public"


def check_address(host: str, address: str, allowed: AllowedHosts) -> None:
    """Refuse a connection to `address` (what `host` resolved to) unless it is public or allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if _is_public(ip) or allowed.allows(host, ip):
        return
    shown = host if host == str(ip) else f"{host} ({ip})"
    raise Refused(f"{shown} is {_kind(ip)} address; list the host in ENGINE_ALLOWED_HOSTS to allow it")


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: str, allowed: AllowedHosts) -> None:
    """What can be checked when a URL is saved: an address, or a name DNS resolves now.

    A name that doesn't resolve here is accepted (it is checked again on every connection).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if allowed.allows(host):
        return
    try:
        addresses = _resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError, ValueError):
        return
    for address in addresses:
        check_address(host, address, allowed)


# --- the exchange: a deadline, and the connections it opened --------------------------------


@dataclass
class _Exchange:
    policy: Policy
    expired: bool = False
    status: str | None = None  # the status line of the last answer
    sockets: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, sock) -> None:
        with self.lock:
            if self.expired:
                raise DeadlineExceeded(self.policy.deadline_seconds)
            self.sockets.append(sock)

    def expire(self) -> None:
        """The deadline passed: end every connection (a read blocked on it returns at once)."""
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                try:
                    # socket.socket's own shutdown, also for TLS sockets: only the file descriptor.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass


_current: ContextVar[_Exchange | None] = ContextVar("outbound_exchange", default=None)


class _CheckedConnectionMixin:
    """Check the target before connecting and the address connected to, for every connection."""

    def connect(self) -> None:
        exchange = _current.get()
        if exchange is None:
            raise Refused("outbound requests must run inside outbound.exchange()")
        allowed = exchange.policy.allowed_hosts
        host = self.host
        if not allowed.allows(host):
            for address in _resolve(host, self.port):
                check_address(host, address, allowed)
        if exchange.expired:
            raise DeadlineExceeded(exchange.policy.deadline_seconds)
        super().connect()
        try:
            check_address(host, self.sock.getpeername()[0], allowed)
            exchange.track(self.sock)
        except BaseException:
            self.close()
            raise


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class _CheckedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the check is on the real target
    session.max_redirects = MAX_REDIRECTS
    session.headers["User-Agent"] = USER_AGENT
    session.mount("http://", _CheckedAdapter())
    session.mount("https://", _CheckedAdapter())
    return session


@contextmanager
def exchange(policy: Policy) -> Iterator[_Exchange]:
    """Run the requests of one exchange (one send, with its redirects) under `policy`.

    Raises DeadlineExceeded when the deadline cut the exchange short.
    """
    current = _Exchange(policy)
    token = _current.set(current)
    timer = threading.Timer(policy.deadline_seconds, current.expire)
    timer.daemon = True
    timer.start()
    try:
        yield current
    except Exception:
        if current.expired:
            raise DeadlineExceeded(policy.deadline_seconds) from None
        raise
    finally:
        timer.cancel()
        _current.reset(token)


def _app_policy() -> Policy:
    """Outside an exchange: the app's settings (no app: nothing internal allowed, 20 s)."""
    return Policy.from_config(current_app.config) if has_app_context() else Policy()


def request(method: str, url: str, **kwargs) -> requests.Response:
    """One request inside the current `exchange()` (or an exchange of its own under the app's
    policy), its whole answer read within the deadline."""
    current = _current.get()
    if current is None:
        with exchange(_app_policy()):
            return request(method, url, **kwargs)
    deadline = current.policy.deadline_seconds
    kwargs.setdefault("timeout", (deadline, deadline))
    with _session() as session:
        response = session.request(method, url, **kwargs)
        response.content  # noqa: B018 - read the whole answer now, under the deadline
    current.status = status_line(response)
    return response


# --- what may be stored and shown of an answer -----------------------------------------------


def status_line(response: requests.Response) -> str:
    """ "HTTP 503 Service Unavailable": the code and its standard phrase (not the server's text)."""
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {response.status_code} {phrase}".strip()


_UNSAFE = re.compile(r"[^\w .,:;()/'-]+")


def sanitise(text: str, max_length: int = REASON_MAX_LENGTH) -> str:
    """Printable, one line, short."""
    return " ".join(_UNSAFE.sub(" ", text).split())[:max_length]


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (requests -> urllib3 -> the socket's OSError)."""
    found: list[BaseException] = []
    todo: list[object] = [error]
    while todo and len(found) < 20:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is seen for seen in found):
            continue
        found.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return found


def reason(error: BaseException) -> str:
    """A short reason for a failed exchange, without its URL, headers or any answer."""
    if isinstance(error, Refused | DeadlineExceeded):
        return error.message
    causes = _causes(error)
    for kind, text in (
        (ConnectionRefusedError, "connection refused"),
        (socket.gaierror, "the name does not resolve"),
        (ConnectionResetError, "connection reset"),
        (requests.exceptions.TooManyRedirects, f"more than {MAX_REDIRECTS} redirects"),
        (requests.exceptions.SSLError, "TLS error"),
        (requests.exceptions.Timeout, "timed out"),
        (TimeoutError, "timed out"),
    ):
        if any(isinstance(cause, kind) for cause in causes):
            return text
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection failed"
    return sanitise(type(error).__name__)
