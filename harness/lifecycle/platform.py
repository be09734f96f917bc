"""Where apps run: the local engine or a remote swarm behind its proxy (``detect``), and
how an app there is reached (``Platform.base_url``, ``app_client``). What is deployed on
it, fitted to it, is ``deploy.py``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.config import FACES, resolve
from harness.errors import PlatformError

if TYPE_CHECKING:
    import httpx

__all__ = ["Platform", "app_client", "detect"]


@dataclass(frozen=True)
class Platform:
    name: Literal["local", "remote"]
    ipvs: bool  # can swarm route VIPs and the ingress mesh?
    domain: str = "localhost"  # apps are <name>.<domain>: on a remote swarm, its proxy's
    proxy: str | None = None  # where a remote swarm's proxy answers (default: DNS of the domain)

    def base_url(self, domain: str, host_port: int | None) -> str:
        """Where an app answers: its host-mode port on the local platform, else its domain
        at the proxy (Traefik routes by the ``Host`` header, and by SNI)."""
        if host_port is not None:
            return f"http://127.0.0.1:{host_port}"
        return f"https://{domain}"


def detect() -> Platform:
    """The local engine unless DOCKER_HOST or a Docker context names another. A remote one
    serves apps under ``CCCI_DOMAIN`` (a wildcard its proxy answers), dialled at
    ``CCCI_PROXY`` when that is set (else the domain's DNS). IPVS as this kernel has it
    locally, as production swarms have it remotely; ``CCCI_IPVS=yes|no`` says otherwise."""
    from harness.swarm.engine import where

    knobs = resolve(FACES["platform"])
    said = (knobs["ipvs"].value or "").lower()
    if said not in ("", "yes", "no"):
        raise PlatformError(f"{knobs['ipvs'].source}={said!r}: say yes or no")
    if not where().startswith("unix://"):
        domain = (knobs["domain"].value or "").strip(".").lower()
        if not re.fullmatch(
            r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", domain
        ):
            raise PlatformError(
                f"the engine at {where()} is remote: set CCCI_DOMAIN to the wildcard domain"
                " its proxy serves apps under (e.g. ci.example.org)"
            )
        proxy = knobs["proxy"].value or None
        return Platform("remote", ipvs=said != "no", domain=domain, proxy=proxy)
    ipvs = Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists()
    return Platform("local", ipvs=ipvs if not said else said == "yes")


def app_client(base_url: str, domain: str, proxy: str | None, **options: Any) -> httpx.Client:
    """An HTTP client (``httpx.Client``) for an app at ``base_url``: every request carries
    ``Host: domain``; with a ``proxy`` address, connections go there, with SNI ``domain``
    (what a wildcard DNS record pointing at the proxy would give). Test apps get no
    certificate (a remote proxy serves its default one), so TLS is not verified: the app's
    answer is what is checked."""
    import httpx

    headers = {"Host": domain, **options.pop("headers", {})}
    if proxy is None:
        return httpx.Client(base_url=base_url, headers=headers, verify=False, **options)

    class Sni(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.extensions["sni_hostname"] = domain
            return super().handle_request(request)

    scheme = base_url.split("://", 1)[0]
    return httpx.Client(
        base_url=f"{scheme}://{proxy}", headers=headers, transport=Sni(verify=False), **options
    )
