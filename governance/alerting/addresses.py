"""Where an alert may be sent. A destination URL is a request Forge makes from inside the network on behalf of whoever
configured it, so it is held to a policy (server-side request forgery is the risk):

- `https` only; `http` only to a loopback address, and only when the deployment allows loopback (tests, development);
  no other scheme (`file:`, `ftp:`, `gopher:` ...), no user name or password in the URL;
- the host's addresses must all be public (globally routable). Refused: cloud metadata endpoints (always, whatever
  the allow-list says), loopback (unless allowed), link-local, private, shared (CGNAT), multicast, unspecified and
  reserved ranges, also when they hide inside an IPv6 address (IPv4-mapped, 6to4, NAT64, Teredo);
- a deployment may allow-list networks (an internal chat server on 10.1.2.0/24); metadata addresses stay refused.

The check runs when a destination is saved and again before every delivery, on the addresses the name resolves to at
that moment; the connection then goes to the address that was checked (governance.alerting.http), so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048

# Instance metadata services: credentials live behind these. Names as the clouds document them.
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address: only this list catches it)
    )
)
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(ValueError):
    """The URL or an address it leads to is not allowed. `transient` marks what may change by itself (a name that
    does not resolve right now), as opposed to a policy refusal."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class AddressPolicy:
    """What the deployment allows beyond public addresses (FORGE_ALERT_ALLOW_LOOPBACK, FORGE_ALERT_ALLOWED_NETWORKS)."""

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, *, allow_loopback: bool, allowed_networks: Iterable[str]) -> AddressPolicy:
        return cls(
            allow_loopback=allow_loopback,
            allowed_networks=tuple(ipaddress.ip_network(n.strip(), strict=False) for n in allowed_networks),
        )


@dataclass(frozen=True)
class Target:
    """A destination URL taken apart: what to connect to and what to ask for."""

    scheme: str
    host: str  # lower-case; an IDN in its ASCII (punycode) form; an IPv6 literal without brackets
    port: int
    target: str  # path and query, as sent on the request line
    literal: IPAddress | None  # the host, when the URL names an address rather than a name

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.literal, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Take a destination URL apart, refusing what is not an http(s) URL to a host (scheme policy comes later)."""
    if not isinstance(url, str) or not url:
        raise AddressRefused("Give the destination's URL.")
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise AddressRefused("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise AddressRefused(f"The URL cannot be read: {exc}.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        shown = f"{scheme}:" if scheme else "no scheme"
        raise AddressRefused(f"Only https URLs are allowed ({shown} is not).")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("The URL may not carry a user name or password; put a token in the path instead.")
    raw_host = parts.hostname
    if not raw_host:
        raise AddressRefused("The URL names no host.")
    if "%" in raw_host:
        raise AddressRefused("The URL's host contains '%' (an IPv6 zone names a link-local address).")
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(raw_host)
    except ValueError:
        literal = None
        host = _ascii_hostname(raw_host)
    else:
        host = str(literal)
    if port == 0:
        raise AddressRefused("Port 0 is not a port to send to.")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(
        scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), target=target, literal=literal
    )


def _ascii_hostname(raw: str) -> str:
    name = raw.rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise AddressRefused(f"{raw!r} is not a valid host name.") from exc
    labels = ascii_name.split(".")
    if not ascii_name or len(ascii_name) > 253 or any(not 1 <= len(label) <= 63 for label in labels):
        raise AddressRefused(f"{raw!r} is not a valid host name.")
    if any(not all(c.isalnum() or c in "-_" for c in label) for label in labels):
        raise AddressRefused(f"{raw!r} is not a valid host name.")
    # An all-numeric dotted name ("2130706433", "0x7f.1") is an address in disguise to many resolvers.
    if all(label.isdigit() or label.lower().startswith("0x") for label in labels):
        raise AddressRefused(f"{raw!r} is an address written as a number; write it as a dotted address.")
    return ascii_name


def _embedded_ipv4(address: IPAddress) -> list[IPAddress]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, NAT64, Teredo), which is where traffic goes."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[IPAddress] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64_PREFIX:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _refusal(address: IPAddress, policy: AddressPolicy) -> str | None:
    """Why one address may not be sent to, or None when it may."""
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_loopback:
        if policy.allow_loopback:
            return None
        return (
            f"{address} is a loopback address (allowed only with FORGE_ALERT_ALLOW_LOOPBACK, for tests and development)"
        )
    if any(address in network for network in policy.allowed_networks):
        return None
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_private:
        return f"{address} is a private address (allow its network with FORGE_ALERT_ALLOWED_NETWORKS)"
    if address.is_reserved or not address.is_global:
        return f"{address} is a reserved or non-public address (allow its network with FORGE_ALERT_ALLOWED_NETWORKS)"
    return None


def address_refusal(address: IPAddress, policy: AddressPolicy) -> str | None:
    """Why `address` may not be sent to (itself, or an IPv4 address it carries), or None when it may."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    # An IPv4-mapped address is that IPv4 address; the other embeddings reach it through a relay: judge both.
    candidates: list[IPAddress] = [mapped] if mapped is not None else [*_embedded_ipv4(address), address]
    for candidate in candidates:
        reason = _refusal(candidate, policy)
        if reason is not None:
            return reason
    return None


def _is_loopback(address: IPAddress) -> bool:
    return address.is_loopback or any(a.is_loopback for a in _embedded_ipv4(address))


Resolver = Callable[[str, int], list[str]]


def system_resolver(timeout_s: float) -> Resolver:
    """getaddrinfo with a deadline (it has none of its own; a broken resolver can take tens of seconds)."""

    def resolve(host: str, port: int) -> list[str]:
        box: dict[str, object] = {}

        def lookup() -> None:
            try:
                box["answer"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                box["error"] = exc

        thread = threading.Thread(target=lookup, daemon=True, name=f"resolve {host}")
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            raise AddressRefused(f"Looking up {host} took longer than {timeout_s:g} s.", transient=True)
        if "error" in box:
            raise AddressRefused(f"{host} could not be resolved ({box['error']}).", transient=True)
        answer = box["answer"]
        assert isinstance(answer, list)
        return list(dict.fromkeys(str(info[4][0]) for info in answer))

    return resolve


def check_url(url: str, policy: AddressPolicy, resolve: Resolver) -> tuple[Target, list[IPAddress]]:
    """The URL taken apart and the addresses it may be sent to; AddressRefused (with the reason) otherwise.

    Every address the name resolves to must pass: an answer that mixes a public and a private address is refused,
    since which one a connection would use is not ours to choose."""
    target = parse_url(url)
    if target.literal is None and (target.host in METADATA_HOSTS or target.host.endswith(".metadata.google.internal")):
        raise AddressRefused(f"{target.host} is a cloud metadata host.")
    if target.literal is not None:
        addresses: list[IPAddress] = [target.literal]
    else:
        answers = resolve(target.host, target.port)
        if not answers:
            raise AddressRefused(f"{target.host} resolves to no address.", transient=True)
        addresses = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError as exc:
                raise AddressRefused(f"{target.host} resolves to {answer!r}, which is not an address.") from exc
    for address in addresses:
        reason = address_refusal(address, policy)
        if reason is not None:
            where = "" if target.literal is not None else f"{target.host} resolves to {address}: "
            raise AddressRefused(f"{where}{reason}.")
    if target.scheme == "http" and not (policy.allow_loopback and all(_is_loopback(a) for a in addresses)):
        raise AddressRefused("Only https URLs are allowed (plain http only to a loopback address in development).")
    return target, addresses


def mask_url(url: str) -> str:
    """What a person may see of a saved URL: its scheme, host and port. The path of a Slack or webhook URL is the
    token that lets anyone post."""
    try:
        target = parse_url(url)
    except AddressRefused:
        return "(unreadable URL)"
    shown = f"{target.scheme}://{target.host_header}/"
    return shown + "…" if target.target not in ("", "/") else shown
