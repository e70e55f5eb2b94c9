"""Behind a reverse proxy: whom to believe about the client's address.

Only when the direct peer is one of ``server.trusted_proxies`` are
``X-Forwarded-For`` and ``X-Forwarded-Proto`` believed. The client is then
the right-most ``X-Forwarded-For`` address that is not itself a trusted
proxy (each proxy appends the address it saw; everything left of the
first untrusted hop may be forged by the client). One middleware, first
in the chain, replaces the request by a clone carrying the real address
and scheme, so every later reader of ``request.remote`` or
``request.scheme`` (rate limits, logs, the sessions list, URLs built from
the request, the session cookie's Secure flag) sees the client, not the
proxy; :func:`client_address` is the one place handlers read it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from gortc.delivery.routing import Handler

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(entries: Iterable[str]) -> tuple[_Network, ...]:
    """Addresses or CIDRs; raises ValueError naming a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
    return tuple(networks)


def _address(text: str) -> _Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = parse_networks(entries)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, peer: str | None) -> bool:
        address = _address(peer) if peer else None
        return address is not None and any(address in net for net in self._networks)

    def client(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client's address: ``peer`` unless it is a trusted proxy that
        forwarded one. A malformed hop stops the walk at the proxy that
        handed it over (nothing left of it is believed)."""
        if not self.trusts(peer):
            return peer
        hops = [hop for header in forwarded_for for hop in header.split(",")]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(client):
                break
        return client

    def scheme(self, peer: str | None, forwarded_proto: Iterable[str], default: str) -> str:
        if not self.trusts(peer):
            return default
        values = [v.strip().lower() for header in forwarded_proto for v in header.split(",")]
        if values and values[-1] in ("http", "https"):
            return values[-1]
        return default


def forwarded_middleware(trusted: TrustedProxies) -> Middleware:
    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not trusted or not trusted.trusts(request.remote):
            return await handler(request)
        remote = trusted.client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, ()))
        scheme = trusted.scheme(
            request.remote, request.headers.getall(hdrs.X_FORWARDED_PROTO, ()), request.scheme
        )
        if remote is None or (remote == request.remote and scheme == request.scheme):
            return await handler(request)
        return await handler(request.clone(remote=remote, scheme=scheme))

    return forwarded


def client_address(request: web.Request) -> str:
    """The client's address as far as it is known (behind a trusted proxy:
    the forwarded one); empty when the transport has none."""
    return request.remote or ""
