"""An in-memory swarm: the lifecycle's ``Swarm`` protocol (harness.lifecycle.context) as
the seam's own docstrings promise it, not as Docker is — for the fast tests of the tiers'
decisions (tests/unit/test_tiers.py).

A deploy makes each service of the deploy file with its labels and one running task per
replica of its container spec (a service with a healthcheck counts at once: what the
engine would report once it is healthy); ``--prune`` removes services the file no longer
has; volumes and networks of the file are made with their labels and the stack's
namespace. Everything is a labelled resource that ``labelled``/``remove_labelled`` find.
A deployed app keeps ``app_data`` in each volume it mounts. The helper container is
``sh -c`` over directories standing in for the volumes (its
absolute paths put under a scratch root). Failures leave as the seam's error classes:
``EngineError`` for an engine that is down (``faults`` a test sets), the caller's class
for a refusal (a ``DeployError`` for a deploy it refuses).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from harness.errors import DeployError, EngineError
from harness.swarm import KINDS, NAMESPACE_LABEL, ExecResult, HelperResult, Resource, Service


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _labels(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return dict(str(item).split("=", 1) for item in value)
    return {str(k): str(v) for k, v in (value or {}).items()}


def _matches(labels: Mapping[str, str], label: str) -> bool:
    key, _, value = label.partition("=")
    return key in labels and (not value or labels[key] == value)


@dataclass
class FakeService:
    spec: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)


class FakeStack:
    def __init__(self, swarm: FakeSwarm, name: str) -> None:
        self.swarm, self.name = swarm, name

    def __repr__(self) -> str:
        return f"FakeStack({self.name!r})"

    def service_name(self, short: str) -> str:
        return f"{self.name}_{short}"

    def deploy(self, deploy_file: Path) -> None:
        self.swarm.check("deploy")
        if self.name in self.swarm.refuse_deploys:
            raise DeployError(f"docker stack deploy {self.name}: refused")
        config = yaml.safe_load(deploy_file.read_text())
        self.swarm.deploys.append(self.name)
        self.swarm.events.append(f"deploy {self.name}")
        namespace = {NAMESPACE_LABEL: self.name}
        for kind in ("volume", "network"):
            for key, spec in (config.get(f"{kind}s") or {}).items():
                spec = spec or {}
                if spec.get("external"):
                    continue
                name = spec.get("name") or f"{self.name}_{key}"
                self.swarm.make(kind, name, {**_labels(spec.get("labels")), **namespace})
        wanted = set()
        for short, spec in (config.get("services") or {}).items():
            name = self.service_name(short)
            wanted.add(name)
            deploy = spec.get("deploy") or {}
            container = {
                "Image": spec.get("image"),
                "Labels": _labels(spec.get("labels")),
                "Env": sorted(_labels(spec.get("environment"))),
            }
            if spec.get("healthcheck"):
                container["Healthcheck"] = {"Test": spec["healthcheck"].get("test")}
            replicas = int(deploy.get("replicas", 1))
            service_spec = {
                "Name": name,
                "Labels": {**_labels(deploy.get("labels")), **namespace},
                "TaskTemplate": {
                    "ContainerSpec": container,
                    "RestartPolicy": {
                        "Condition": (deploy.get("restart_policy") or {}).get("condition", "any")
                    },
                },
                "Mode": {"Replicated": {"Replicas": replicas}},
            }
            service = self.swarm.services.get(name)
            if service is None or service.spec != service_spec:
                old = service.tasks if service is not None else []
                for task in old:
                    task["DesiredState"] = "shutdown"
                    task["Status"]["State"] = "shutdown"
                tasks = old + self.swarm.tasks_of(service_spec)
                self.swarm.services[name] = FakeService(service_spec, tasks)
            for volume in spec.get("volumes") or ():
                if isinstance(volume, dict) and volume.get("type") == "volume":
                    key = volume["source"]
                    named = ((config.get("volumes") or {}).get(key) or {}).get("name")
                    name = named or f"{self.name}_{key}"
                    self.swarm.make("volume", name, namespace)
                    (self.swarm.volumes / name / "app.db").write_bytes(self.swarm.app_data)
        for name in [n for n in self.swarm.services if n.startswith(f"{self.name}_")]:
            if name not in wanted:  # --prune
                del self.swarm.services[name]

    def _snapshot(self, name: str, service: FakeService, with_tasks: bool) -> Service:
        attrs = {"Spec": service.spec, "UpdateStatus": {}}
        return Service.from_attrs(self.name, attrs, service.tasks if with_tasks else ())

    def services(self) -> list[Service]:
        self.swarm.check("services")
        return [
            self._snapshot(name, service, True)
            for name, service in self.swarm.services.items()
            if name.startswith(f"{self.name}_")
        ]

    def service(self, short: str) -> Service | None:
        self.swarm.check("service")
        found = self.swarm.services.get(self.service_name(short))
        return None if found is None else self._snapshot(short, found, False)

    def logs(self, short: str, tail: int = 50) -> str:
        self.swarm.check("logs")
        return f"log of {self.service_name(short)}\n"

    def evidence(self, short: str, tail: int = 10) -> str:
        try:
            return self.logs(short, tail).strip() or "(no log output)"
        except EngineError as exc:
            return f"(logs unavailable: {exc})"

    def exec(self, short: str, argv: Sequence[str]) -> ExecResult | None:
        """None when the service has no running container, as the seam says."""
        self.swarm.check("exec")
        found = self.swarm.services.get(self.service_name(short))
        if found is None or not any(t["Status"]["State"] == "running" for t in found.tasks):
            return None
        self.swarm.execs.append((self.service_name(short), list(argv)))
        return ExecResult(0, "", "")

    def oom_killed(self, task: Mapping[str, Any]) -> bool:
        return False

    def restart(self, shorts: Iterable[str]) -> None:
        for short in shorts:
            self.swarm.check("restart")
            service = self.swarm.services[self.service_name(short)]
            for task in service.tasks:
                task["DesiredState"] = "shutdown"
                task["Status"]["State"] = "shutdown"
            service.tasks += self.swarm.tasks_of(service.spec)
            self.swarm.restarts.append(self.service_name(short))


class _NoEvents:
    """Nothing wakes a wait early: it checks on its timer."""

    def wait(self, timeout: float) -> None:
        return None

    def __enter__(self) -> _NoEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# An absolute path in a helper script (not /dev/...), as the seam's scripts write them.
_ABSOLUTE = re.compile(r"(?<![^\s'\"<>=])/(?!dev/)")


_HELPERS = {"ccci-restore": "restore", "backup.tar.gz": "archive", "printf %s": "marks"}


class FakeSwarm:
    """The seam in memory. ``faults`` maps an operation (``deploy``, ``services``, …,
    ``ping``) to how many more calls of it fail as an engine that is down;
    ``failing`` names images whose tasks fail (a crash loop)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: dict[str, FakeService] = {}
        self.resources: dict[tuple[str, str], dict[str, str]] = {}
        self.volumes = root / "volumes"
        self.faults: dict[str, int] = {}
        self.failing: set[str] = set()
        self.app_data = b"the app's state"  # what a running app keeps in each of its volumes
        self.refuse_deploys: set[str] = set()
        self.deploys: list[str] = []
        self.events: list[str] = []  # deploys, volumes created, helpers run: in order
        self.restarts: list[str] = []
        self.execs: list[tuple[str, list[str]]] = []
        self.helpers: list[str] = []
        self.pulled: list[str] = []
        self.removed: list[str] = []

    def check(self, operation: str) -> None:
        """Raise as the seam does when the engine is down, if a test said so."""
        left = self.faults.get(operation, 0)
        if left:
            self.faults[operation] = left - 1
            raise EngineError(f"{operation}: the engine failed: 500 Server Error (fake)")

    def make(self, kind: str, name: str, labels: Mapping[str, str]) -> None:
        self.resources.setdefault((kind, name), dict(labels))
        if kind == "volume":
            (self.volumes / name).mkdir(parents=True, exist_ok=True)

    def tasks_of(self, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        container = spec["TaskTemplate"]["ContainerSpec"]
        failing = container["Image"] in self.failing
        state = "failed" if failing else "running"
        count = 3 if failing else spec["Mode"]["Replicated"]["Replicas"]
        return [
            {
                "Spec": {"ContainerSpec": container},
                "Status": {"State": state, "Timestamp": _now(), "Err": "exit 1" * failing},
                "DesiredState": "running",
                "CreatedAt": _now(),
            }
            for _ in range(count)
        ]

    # -- the protocol -------------------------------------------------------------------

    def stack(self, name: str) -> FakeStack:
        return FakeStack(self, name)

    def wakeup(self, since: datetime, stacks: Collection[str]) -> _NoEvents:
        return _NoEvents()

    def ping(self) -> None:
        self.check("ping")

    def ready_nodes(self) -> int:
        return 1

    def _everything(self) -> list[Resource]:
        found = [Resource(k, n, dict(labels), None) for (k, n), labels in self.resources.items()]
        for name, service in self.services.items():
            found.append(Resource("service", name, service.spec["Labels"], None))
        return found

    def labelled(self, label: str, kinds: Sequence[str] = KINDS) -> list[Resource]:
        self.check("labelled")
        return [r for r in self._everything() if r.kind in kinds and _matches(r.labels, label)]

    def remove_labelled(self, label: str, kinds: Sequence[str] = KINDS) -> tuple[list[str], int]:
        self.check("remove_labelled")
        found = self.labelled(label, kinds)
        for resource in found:
            if resource.kind == "service":
                del self.services[resource.name]
            else:
                del self.resources[(resource.kind, resource.name)]
                if resource.kind == "volume":
                    shutil.rmtree(self.volumes / resource.name, ignore_errors=True)
            self.removed.append(f"{resource.kind} {resource.name}")
        return [f"{r.kind} {r.name}" for r in found], len(found)

    def create_secret(self, name: str, value: str, labels: Mapping[str, str]) -> None:
        self.check("create_secret")
        if ("secret", name) in self.resources:
            raise EngineError(f"creating secret {name}: already exists")
        self.resources[("secret", name)] = dict(labels)

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self.check("create_volume")
        self.make("volume", name, labels)
        self.events.append(f"volume {name}")

    def ensure_images(
        self,
        images: Mapping[str, str],
        policy: str,
        locks: Path,
        *,
        seconds: float,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.check("ensure_images")
        self.pulled += [i for i in images.values() if i not in self.pulled]

    def run_helper(
        self,
        script: str,
        volumes: Mapping[str, str],
        labels: Mapping[str, str],
        *,
        upload: bytes | None = None,
        download: str | None = None,
    ) -> HelperResult:
        """``sh -c script`` with each volume's directory at its mount point under a
        scratch root; a volume that does not exist yet is made with ``labels``."""
        self.check("run_helper")
        self.helpers.append(script)
        what = next(
            (w for k, w in _HELPERS.items() if k in script), "reads"
        )  # what the seam's scripts do
        self.events.append(f"helper {', '.join(volumes)} {what}")
        with tempfile.TemporaryDirectory(dir=self.root) as scratch:
            top = Path(scratch)
            for name, target in volumes.items():
                self.make("volume", name, labels)
                shutil.copytree(self.volumes / name, top / target.lstrip("/"))
            if upload is not None:
                import io
                import tarfile

                with tarfile.open(fileobj=io.BytesIO(upload)) as tar:
                    tar.extractall(top, filter="data")
            done = subprocess.run(
                ["sh", "-c", _ABSOLUTE.sub(f"{top}/", script)],
                capture_output=True,
                check=False,
            )
            for name, target in volumes.items():
                shutil.rmtree(self.volumes / name)
                shutil.copytree(top / target.lstrip("/"), self.volumes / name)
            data = None
            if download is not None and done.returncode == 0:
                data = (top / download.lstrip("/")).read_bytes()
        return HelperResult(done.returncode, done.stdout, done.stderr.decode(), data)

    def disk_use(self, label: str) -> dict[str, int]:
        return {}
