""" Outgoing HTTP requests to addresses that users type (webhooks): only to the public Internet, or to hosts an
administrator allowed. Pure Python, no ORM: callers pass the allow-list and turn the reasons into messages. """
import base64
import contextlib
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from urllib.parse import quote, unquote, urlsplit

_logger = logging.getLogger(__name__)

DEFAULT_PORTS = {'http': 80, 'https': 443}
ALLOWED_PORTS = (80, 443)
URL_SAFE = "/%:@!$&'()*+,;=?~"
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (RFC 6052 NAT64): judged by that address.
NAT64 = ipaddress.ip_network('64:ff9b::/96')

# Reasons of a refusal or a failure; callers word them.
INVALID, SCHEME, PORT, INTERNAL, UNRESOLVED = 'invalid', 'scheme', 'port', 'internal', 'unresolved'
TIMEOUT, UNREACHABLE = 'timeout', 'unreachable'


class OutgoingRefused(Exception):
    """ The URL is not one the server may call: nothing was sent. """

    def __init__(self, host, reason):
        super().__init__(f"{host or '?'}: {reason}")
        self.host, self.reason = host, reason


class OutgoingFailed(Exception):
    """ The call was allowed but did not get an answer (timeout, network error): `reason` only, never the peer's words. """

    def __init__(self, host, reason):
        super().__init__(f"{host}: {reason}")
        self.host, self.reason = host, reason


def parse_allowed_hosts(text):
    """ {(host, port or None)} of a comma-separated list of `host` or `host:port` entries (IPv6 in brackets). """
    allowed = set()
    for entry in (text or '').replace('\n', ',').split(','):
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            parts = urlsplit(f'//{entry}')
            port = parts.port
        except ValueError:
            continue
        if parts.hostname:
            allowed.add((parts.hostname.rstrip('.'), port))
    return allowed


def is_public_address(address):
    """ Whether an IP address is globally routable; an IPv6 form of an IPv4 address (mapped, NAT64, 6to4) is
    judged by that IPv4 address. """
    ip = ipaddress.ip_address(address.split('%', 1)[0])
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if embedded is not None:
            return is_public_address(str(embedded))
        if ip.is_site_local:
            return False
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


class Target:
    """ A checked URL: where to connect and what to ask. """

    def __init__(self, url, allowed_hosts=()):
        try:
            parts = urlsplit((url or '').strip())
            port = parts.port
        except ValueError:
            raise OutgoingRefused(None, INVALID) from None
        self.scheme = parts.scheme.lower()
        self.host = (parts.hostname or '').rstrip('.')
        if self.scheme not in DEFAULT_PORTS:
            raise OutgoingRefused(self.host, SCHEME)
        if not self.host:
            raise OutgoingRefused(None, INVALID)
        self.port = port or DEFAULT_PORTS[self.scheme]
        allowed = set(allowed_hosts)
        # An allowed entry may be on an internal address: `host` on ports 80 and 443, `host:port` on that port.
        self.allowed = (self.host, self.port) in allowed or (
            (self.host, None) in allowed and self.port in ALLOWED_PORTS)
        if self.port not in ALLOWED_PORTS and not self.allowed:
            raise OutgoingRefused(self.host, PORT)
        if not self.allowed and self._obviously_internal():
            raise OutgoingRefused(self.host, INTERNAL)
        # Quoted as a browser would (http.client refuses spaces and control characters); quotes already there are kept.
        self.path = quote(parts.path or '/', safe=URL_SAFE) + (f'?{quote(parts.query, safe=URL_SAFE)}' if parts.query else '')
        self.auth = (unquote(parts.username or ''), unquote(parts.password or '')) if parts.username else None

    def _obviously_internal(self):
        """ Internal without asking the DNS: a literal private address or a name of the machine itself. """
        if self.host == 'localhost' or self.host.endswith('.localhost'):
            return True
        try:
            return not is_public_address(self.host)
        except ValueError:
            return False  # a name: judged once resolved

    def resolve(self):
        """ The addresses to connect to, each checked (all of them: a name may mix public and internal ones). """
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            raise OutgoingRefused(self.host, UNRESOLVED) from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not addresses:
            raise OutgoingRefused(self.host, UNRESOLVED)
        if not self.allowed and not all(is_public_address(address) for address in addresses):
            raise OutgoingRefused(self.host, INTERNAL)
        return addresses


class _PinnedMixin:
    """ Connects to a checked address while the request (Host header, TLS name and certificate) names the host. """

    def __init__(self, host, port, address, timeout, **kwargs):
        super().__init__(host, port, timeout=timeout, **kwargs)
        self.address = address
        self.on_socket = None

    def _open(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        if self.on_socket:
            self.on_socket(sock)
        return sock


class _PinnedHTTPConnection(_PinnedMixin, http.client.HTTPConnection):

    def connect(self):
        self.sock = self._open()


class _PinnedHTTPSConnection(_PinnedMixin, http.client.HTTPSConnection):

    def connect(self):
        self.sock = self._context.wrap_socket(self._open(), server_hostname=self.host)


def post(url, body, headers, timeout, allowed_hosts=()):
    """ POST `body` to `url` and return the answer's status code; redirects are not followed and the answer's
    body is not read. The whole call (resolution, connection, sending, the answer's headers) takes at most
    `timeout` seconds. Raises OutgoingRefused (nothing sent) or OutgoingFailed. """
    deadline = time.monotonic() + timeout
    try:
        target = Target(url, allowed_hosts)
        addresses = target.resolve()
    except OutgoingRefused as refusal:
        _logger.info("Outgoing call to %s refused: %s", refusal.host, refusal.reason)
        raise
    headers = dict(headers, Connection='close')
    if target.auth:
        headers['Authorization'] = 'Basic ' + base64.b64encode(':'.join(target.auth).encode()).decode()
    last_reason = UNREACHABLE
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last_reason = TIMEOUT
            break
        if target.scheme == 'https':
            connection = _PinnedHTTPSConnection(target.host, target.port, address, remaining,
                                                context=ssl.create_default_context())
        else:
            connection = _PinnedHTTPConnection(target.host, target.port, address, remaining)
        # The socket timeout bounds each read; this bounds them all: a peer answering a byte at a time is cut.
        sockets, expired = [], threading.Event()

        def cut(sockets=sockets, expired=expired):
            expired.set()
            for sock in sockets:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)
        connection.on_socket = sockets.append
        watchdog = threading.Timer(remaining, cut)
        watchdog.start()
        try:
            connection.request('POST', target.path, body=body, headers=headers)
            status = connection.getresponse().status
            if expired.is_set():
                # The cut socket reads as the answer's end: a status read then is not the receiver's.
                raise TimeoutError
        except (OSError, http.client.HTTPException) as error:
            last_reason = TIMEOUT if expired.is_set() or isinstance(error, TimeoutError) else UNREACHABLE
            # A refused or unreachable address: the next one may answer; a timeout used the time of all.
            if last_reason == TIMEOUT:
                break
            continue
        finally:
            watchdog.cancel()
            connection.close()
        _logger.info("Outgoing call to %s answered %s", target.host, status)
        return status
    _logger.info("Outgoing call to %s failed: %s", target.host, last_reason)
    raise OutgoingFailed(target.host, last_reason)
