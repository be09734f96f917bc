"""A stack as the harness sees it: one name, services found by their short name.

``Stack("radicale-1a2b3ci0_localhost")`` is the only place the swarm's service names
(``<stack>_<service>``) are made; everything else says ``stack.service("app")``.
``Service`` is a snapshot — spec, update status and tasks as the engine reported them at
one moment — so whoever judges it (convergence) is pure and testable without Docker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import redact
from harness.errors import DeployError, EngineError, ProbeError
from harness.swarm.cli import docker as docker_cli
from harness.swarm.engine import client, translated

__all__ = ["NAMESPACE_LABEL", "ExecResult", "Service", "Stack"]

NAMESPACE_LABEL = "com.docker.stack.namespace"
SERVICE_LABEL = "com.docker.swarm.service.name"


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run inside a service's container."""

    exit_code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Service:
    """One service of a stack at one moment: its spec, update status and tasks."""

    short: str  # "app"
    name: str  # "<stack>_app"
    spec: dict[str, Any]
    update_status: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[dict[str, Any], ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.get("Labels") or {})

    @classmethod
    def from_attrs(cls, stack: str, attrs: dict[str, Any], tasks: Iterable[Any]) -> Service:
        """From the engine's JSON (``docker service inspect`` and ``docker service ps``)."""
        name = attrs["Spec"]["Name"]
        return cls(
            short=name.removeprefix(f"{stack}_"),
            name=name,
            spec=attrs["Spec"],
            update_status=attrs.get("UpdateStatus") or {},
            tasks=tuple(tasks),
        )


@dataclass(frozen=True)
class Stack:
    name: str

    def service_name(self, short: str) -> str:
        return f"{self.name}_{short}"

    def deploy(self, deploy_file: Path) -> None:
        """``docker stack deploy`` of a deploy file; returns once the swarm took it."""
        docker_cli(
            [
                *("stack", "deploy", "--detach=true", "--prune", "--resolve-image", "never"),
                *("-c", str(deploy_file), self.name),
            ],
            what=f"docker stack deploy {self.name}",
            refused=DeployError,
        )

    def _sdk_services(self) -> list[Any]:
        return list(client().services.list(filters={"label": f"{NAMESPACE_LABEL}={self.name}"}))

    def services(self) -> list[Service]:
        """Every service of the stack, with its tasks."""
        with translated(f"listing the services of {self.name}"):
            return [Service.from_attrs(self.name, s.attrs, s.tasks()) for s in self._sdk_services()]

    def service(self, short: str) -> Service | None:
        """One service (without its tasks), or None when the stack has no such service."""
        import docker

        with translated(f"reading service {self.service_name(short)}"):
            try:
                found = client().services.get(self.service_name(short))
            except docker.errors.NotFound:
                return None
            return Service.from_attrs(self.name, found.attrs, ())

    def logs(self, short: str, tail: int = 50) -> str:
        """The last ``tail`` log lines of a service (all its tasks), as text."""
        with translated(f"reading the logs of {self.service_name(short)}"):
            service = client().services.get(self.service_name(short))
            raw = b"".join(service.logs(stdout=True, stderr=True, tail=tail, timestamps=False))
        return raw.decode(errors="replace")

    def evidence(self, short: str, tail: int = 10) -> str:
        """Log lines as evidence for a failure (never the failure itself), redacted: an app
        may well log its own secrets."""
        try:
            text = redact.redact(self.logs(short, tail).strip())
        except EngineError as exc:
            return f"(logs unavailable: {exc})"
        return text or "(no log output)"

    def exec(self, short: str, argv: Sequence[str]) -> ExecResult | None:
        """Run ``argv`` in the running container of a service on this engine; None when it
        has none right now. A container that stops meanwhile is the app's doing: a
        ``ProbeError``."""
        import docker

        name = self.service_name(short)
        with translated(f"exec in {name}", refused=ProbeError):
            running = client().containers.list(
                filters={"label": f"{SERVICE_LABEL}={name}", "status": "running"}, sparse=True
            )
            if not running:
                return None
            try:
                container = client().containers.get(running[0].id)
            except docker.errors.NotFound:
                return None  # gone since it was listed: the wait looks again
            code, (out, err) = container.exec_run(list(argv), demux=True)
        return ExecResult(
            int(code), (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
        )

    def oom_killed(self, task: Mapping[str, Any]) -> bool:
        """Whether the kernel's OOM killer ended this task's container (as far as the
        engine still knows it)."""
        import docker

        container = (task.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")
        if not container:
            return False
        with translated(f"inspecting container {container[:12]}"):
            try:
                attrs = client().containers.get(container).attrs
            except docker.errors.NotFound:
                return False
        return bool(attrs.get("State", {}).get("OOMKilled"))

    def restart(self, shorts: Iterable[str]) -> None:
        """Restart services (``docker service update --force``): new tasks, same spec."""
        for short in shorts:
            with translated(f"restarting {self.service_name(short)}"):
                client().services.get(self.service_name(short)).force_update()
