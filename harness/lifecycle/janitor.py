"""Who owns what on a shared engine: run leases, reserved host ports, and the janitor.

Every run holds a lease for its whole life: an exclusive flock on
``<cache>/leases/<run_id>.lock``. The kernel drops it when the process dies, however it
dies (SIGKILL, OOM, a lost CI runner), so "lease free" means "the run is dead". The
janitor, run at the start of every cc-ci session, removes the resources of runs whose
lease is free and whose resources are older than a threshold; a live run of another
session holds its lease and is never touched. On an engine several cc-ci hosts share (a
remote swarm), a run's resources say which host it runs on (``cc-ci.host``): a janitor
judges only its own host's runs, since another host's lease is not one it can see; that
host's own janitor sweeps them when their run died.

Host ports for the local platform's host-mode publishing are reserved under one lock, one
file per port naming its run, so two concurrent runs never pick the same port. Swarm binds
a host-mode port on every address (0.0.0.0 and [::]: its port config has no host IP), so
a reserved port is kept loopback-only by the firewall: a rule per address family drops new
connections to it that do not come in on ``lo``, in the mangle table's PREROUTING (before
Docker's DNAT, which sends IPv4 on to the container, and before docker-proxy, which answers
IPv6 on [::]; Docker's own DOCKER-USER chain sees only the forwarded IPv4). The rules carry
the run's label as their comment and go when its ports are released.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from harness import proc
from harness.errors import PlatformError
from harness.fetch import CACHE_DIR
from harness.lifecycle import teardown
from harness.lifecycle.labels import HOST_LABEL, RUN_LABEL, host_id
from harness.swarm import labelled

__all__ = ["Lease", "release_ports", "reserve_port", "sweep_dead_runs"]

log = logging.getLogger(__name__)

LEASES = CACHE_DIR / "leases"
PORTS = CACHE_DIR / "ports"
DEFAULT_MIN_AGE = 60.0  # seconds: never sweep what was created a moment ago


class Lease:
    """Held by a live run; free once its process is gone."""

    def __init__(self, run_id: str, leases: Path = LEASES) -> None:
        leases.mkdir(parents=True, exist_ok=True)
        self.path = leases / f"{run_id}.lock"
        self._lock = FileLock(self.path)

    def acquire(self) -> Lease:
        self._lock.acquire(timeout=0)
        return self

    def release(self) -> None:
        self._lock.release()
        self.path.unlink(missing_ok=True)


def is_alive(run_id: str, leases: Path = LEASES) -> bool:
    """Whether the run holding ``run_id``'s lease is still running."""
    probe = FileLock(leases / f"{run_id}.lock")
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


def reserve_port(run_id: str, ports: Path = PORTS) -> int:
    """A free 127.0.0.1 port no other live run holds, reserved for ``run_id`` and reachable
    from this host only (``loopback_only``)."""
    ports.mkdir(parents=True, exist_ok=True)
    with FileLock(ports / ".lock"):
        for _ in range(100):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            claim = ports / str(port)
            if not claim.exists():
                claim.write_text(run_id)
                try:
                    loopback_only(port, run_id)
                except PlatformError:
                    claim.unlink()
                    _remove_rules(run_id)
                    raise
                return port
    raise PlatformError("no free 127.0.0.1 port after 100 tries")


def release_ports(run_id: str, ports: Path = PORTS) -> None:
    """Free the run's port claims, and its firewall rules."""
    if not ports.is_dir():
        return
    with FileLock(ports / ".lock"):  # another run releasing its own ports at the same time
        for claim in ports.iterdir():
            if claim.name.isdigit() and claim.read_text().strip() == run_id:
                claim.unlink(missing_ok=True)
        _remove_rules(run_id)


_FIREWALLS = ("iptables", "ip6tables")
_IPV6 = Path("/proc/net/if_inet6")  # absent: the kernel has no IPv6, nothing binds [::]


def loopback_only(port: int, run_id: str) -> None:
    """Drop new TCP connections to ``port`` that do not come in on ``lo``, for IPv4 and IPv6
    (the rule's comment names the run); a PlatformError when the firewall refuses."""
    rule = ["!", "-i", "lo", "-p", "tcp", "--dport", str(port)]
    rule += ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment"]
    for tool in _FIREWALLS if _IPV6.exists() else _FIREWALLS[:1]:
        argv = [tool, "-w", "-t", "mangle", "-I", "PREROUTING", *rule, f"{RUN_LABEL}={run_id}"]
        try:
            done = proc.run([*argv, "-j", "DROP"], timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PlatformError(f"cannot keep port {port} loopback-only: {tool}: {exc}") from exc
        if done.returncode != 0:
            raise PlatformError(
                f"cannot keep port {port} loopback-only: {tool} exited {done.returncode}:"
                f" {done.stderr.strip()}"
            )


def _remove_rules(run_id: str) -> None:
    """Delete every firewall rule of ``run_id`` (there is none where no firewall runs)."""
    for tool in _FIREWALLS:
        try:
            listed = proc.run([tool, "-w", "-t", "mangle", "-S", "PREROUTING"], timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in listed.stdout.splitlines():
            words = shlex.split(line)
            if words[:2] == ["-A", "PREROUTING"] and f"{RUN_LABEL}={run_id}" in words:
                proc.run([tool, "-w", "-t", "mangle", "-D", *words[1:]], timeout=30)


def sweep_dead_runs(
    min_age: float = DEFAULT_MIN_AGE, leases: Path = LEASES, ports: Path = PORTS
) -> dict[str, int]:
    """Remove resources of dead runs older than ``min_age`` s; ``{run_id: removed}``. A dead
    run's port claims and lease file go too, also when its resources were already gone."""
    owners: dict[str, datetime] = {}
    now = datetime.now(UTC)
    kinds = ("service", "volume", "network", "secret", "config")
    for resource in labelled(RUN_LABEL, kinds):
        if resource.labels.get(HOST_LABEL, host_id()) != host_id():
            continue  # another host's run: its lease is not ours to see, so not dead to us
        run_id = resource.labels.get(RUN_LABEL)
        created = resource.created or now
        if run_id and (run_id not in owners or created < owners[run_id]):
            owners[run_id] = created
    swept = {}
    for run_id, oldest in owners.items():
        if (now - oldest).total_seconds() < min_age or is_alive(run_id, leases):
            continue
        removed = teardown.remove_run(run_id)
        release_ports(run_id)
        (leases / f"{run_id}.lock").unlink(missing_ok=True)
        swept[run_id] = len(removed)
        log.warning("janitor: removed %d resources of dead run %s", len(removed), run_id)
    for run_id, touched in _files_of_runs(leases, ports).items():
        if run_id in owners or now.timestamp() - touched < min_age or is_alive(run_id, leases):
            continue
        release_ports(run_id, ports)
        (leases / f"{run_id}.lock").unlink(missing_ok=True)
    return swept


def _files_of_runs(leases: Path, ports: Path) -> dict[str, float]:
    """Run ids with a lease file or a port claim, and when their newest file was written."""
    found: dict[str, float] = {}
    files = [(p.stem, p) for p in leases.glob("*.lock")] if leases.is_dir() else []
    if ports.is_dir():
        with FileLock(ports / ".lock"):  # claims come and go under this lock
            files += [(p.read_text().strip(), p) for p in ports.iterdir() if p.name.isdigit()]
    for run_id, path in files:
        with contextlib.suppress(FileNotFoundError):  # a lease its run released meanwhile
            found[run_id] = max(found.get(run_id, 0.0), path.stat().st_mtime)
    return found
