"""A remote Docker engine for the tests: a second dockerd in a network namespace the test
makes itself (its own data root, exec root, pidfile and sockets), reached over TCP with
TLS on the namespace's address, one-node swarm, a ``proxy`` overlay network as Co-op
Cloud servers have — and a reverse proxy (nginx from Debian, standing in for Traefik)
whose routes are written from the traefik labels of the stacks deployed there. Nothing of
it is in the product; everything of it goes when the test is done.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container
from docker.tls import TLSConfig

PROXY_IMAGE = "cc-ci-test/proxy:bookworm"
PROXY_CONTEXT = Path(__file__).parent / "data" / "proxy"
_RULE = re.compile(r"Host\(`([^`]+)`\)")


def _sh(*argv: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=cwd, env=env)
    return done.stdout.strip()


def _certificates(dir: Path, address: str) -> None:
    """A CA, a server certificate for ``address`` and a client certificate, as dockerd's
    ``--tlsverify`` and ``DOCKER_CERT_PATH`` want them."""
    dir.mkdir(parents=True)
    ssl = ["openssl"]

    def run(*args: str) -> None:
        _sh(*ssl, *args, cwd=dir)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    )
    for name, ext in (
        ("server", f"subjectAltName=IP:{address}"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
        )
        (dir / f"{name}.ext").write_text(ext + "\n")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
        )
    shutil.copy(dir / "client.pem", dir / "cert.pem")
    shutil.copy(dir / "client-key.pem", dir / "key.pem")


class RemoteEngine:
    def __init__(self, root: Path, subnet: int) -> None:
        self.root = root
        self.ns = f"ccci-{secrets.token_hex(3)}"
        self.veth = f"cv{secrets.token_hex(3)}"
        self.host_address = f"10.231.{subnet}.1"
        self.address = f"10.231.{subnet}.2"
        self.host = f"tcp://{self.address}:2376"
        self.certs = root / "certs"
        self.process: subprocess.Popen[bytes] | None = None
        self.client: Any = None
        self.routed: dict[str, str] = {}  # domain -> upstream the proxy sends it to
        self._stop = threading.Event()

    @property
    def env(self) -> dict[str, str]:
        """What a client of this engine sets (the docker CLI and the SDK alike)."""
        return {
            "DOCKER_HOST": self.host,
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(self.certs),
        }

    def start(self, images: Iterable[str]) -> RemoteEngine:
        _sh("ip", "netns", "add", self.ns)
        _sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", f"{self.veth}n")
        _sh("ip", "link", "set", f"{self.veth}n", "netns", self.ns)
        _sh("ip", "addr", "add", f"{self.host_address}/30", "dev", self.veth)
        _sh("ip", "link", "set", self.veth, "up")
        inside = ["ip", "-n", self.ns]
        _sh(*inside, "addr", "add", f"{self.address}/30", "dev", f"{self.veth}n")
        _sh(*inside, "link", "set", f"{self.veth}n", "up")
        _sh(*inside, "link", "set", "lo", "up")
        _sh(*inside, "route", "add", "default", "via", self.host_address)
        _certificates(self.certs, self.address)
        data = self.root / "engine"
        # nsenter enters the network namespace only: `ip netns exec` would also mount a
        # fresh /sys, hiding the cgroup mounts dockerd needs.
        argv = [
            "nsenter",
            f"--net=/run/netns/{self.ns}",
            "dockerd",
            "--data-root",
            str(data / "data"),
            "--exec-root",
            str(data / "exec"),
            "--pidfile",
            str(data / "dockerd.pid"),
            "-H",
            f"unix://{data / 'docker.sock'}",
            "-H",
            self.host,
            "--tlsverify",
            "--tlscacert",
            str(self.certs / "ca.pem"),
            "--tlscert",
            str(self.certs / "server.pem"),
            "--tlskey",
            str(self.certs / "server-key.pem"),
        ]
        data.mkdir(parents=True)
        with (self.root / "dockerd.log").open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        tls = TLSConfig(
            client_cert=(str(self.certs / "cert.pem"), str(self.certs / "key.pem")),
            ca_cert=str(self.certs / "ca.pem"),
            verify=True,
        )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, (self.root / "dockerd.log").read_text()[-3000:]
            try:
                self.client = docker.DockerClient(
                    base_url=self.host, tls=tls, timeout=60, version="1.41"
                )
                self.client.api.trust_env = False  # this CA, not REQUESTS_CA_BUNDLE's
                self.client.ping()
                break
            except Exception:
                assert time.monotonic() < deadline, (self.root / "dockerd.log").read_text()[-3000:]
                time.sleep(0.3)
        self.client.swarm.init(advertise_addr=self.address, listen_addr=f"{self.address}:2377")
        self.client.networks.create("proxy", driver="overlay", attachable=True)
        self.load([*images, PROXY_IMAGE])
        self._start_proxy()
        return self

    def load(self, images: list[str]) -> None:
        """The images, from this host's engine (as a registry would give them)."""
        with subprocess.Popen(
            ["docker", "save", *images],
            stdout=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
        ) as save:
            assert save.stdout is not None
            subprocess.run(
                ["docker", "load", "-q"],
                stdin=save.stdout,
                check=True,
                capture_output=True,
                env={**os.environ, **self.env},
            )
        assert save.returncode == 0

    def _start_proxy(self) -> None:
        self.proxy: Container = self.client.containers.run(
            PROXY_IMAGE,
            name="proxy",
            detach=True,
            network="proxy",
            ports={"443/tcp": (self.address, 443)},
        )
        threading.Thread(target=self._route, name="proxy-routes", daemon=True).start()

    def _route(self) -> None:
        """The proxy's routes, rewritten whenever the traefik labels of the services on
        the swarm change, as Traefik's swarm provider follows them."""
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                routes = {}
                for service in self.client.services.list():
                    labels = service.attrs["Spec"].get("Labels") or {}
                    if labels.get("traefik.enable") != "true":
                        continue
                    port = next(
                        (v for k, v in labels.items() if k.endswith(".loadbalancer.server.port")),
                        None,
                    )
                    rules = [
                        v
                        for k, v in labels.items()
                        if k.startswith("traefik.http.routers.") and k.endswith(".rule")
                    ]
                    for rule in rules:
                        for domain in _RULE.findall(rule):
                            routes[domain] = f"{service.name}:{port}"
                if routes != self.routed:
                    self._write(routes)
                    self.routed = routes

    def _write(self, routes: dict[str, str]) -> None:
        blocks = "".join(
            f"server {{ listen 443 ssl; server_name {domain};"
            " ssl_certificate /etc/nginx/cert.pem; ssl_certificate_key /etc/nginx/key.pem;"
            " resolver 127.0.0.11 valid=1s ipv6=off;"
            f" set $app http://{upstream};"
            " location / { proxy_pass $app; proxy_set_header Host $host;"
            " proxy_set_header X-Forwarded-Proto https;"
            " proxy_set_header X-Forwarded-Host $host; } }\n"
            for domain, upstream in sorted(routes.items())
        )
        script = f"cat > /etc/nginx/conf.d/apps.conf <<'EOF'\n{blocks}EOF\nnginx -s reload"
        self.proxy.exec_run(["sh", "-c", script])

    def access_log(self) -> str:
        return self.proxy.logs().decode(errors="replace")

    def labelled(self, label: str) -> list[str]:
        """Everything on this engine carrying ``label``: what a run must leave none of."""
        c, found = self.client, []
        found += [f"service {s.name}" for s in c.services.list(filters={"label": label})]
        found += [
            f"container {x.name}" for x in c.containers.list(all=True, filters={"label": label})
        ]
        found += [f"volume {v.name}" for v in c.volumes.list(filters={"label": label})]
        found += [f"network {n.name}" for n in c.networks.list(filters={"label": label})]
        found += [f"secret {s.name}" for s in c.secrets.list(filters={"label": label})]
        found += [f"config {x.name}" for x in c.configs.list(filters={"label": label})]
        return found

    def stop(self) -> None:
        self._stop.set()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.client.swarm.leave(force=True)
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            _sh("ip", "link", "del", self.veth)
        with contextlib.suppress(subprocess.CalledProcessError):
            _sh("ip", "netns", "del", self.ns)
        data = self.root / "engine"
        if data.exists():  # whatever dockerd left mounted under its roots, then the roots
            for line in reversed(Path("/proc/mounts").read_text().splitlines()):
                target = line.split()[1]
                if target.startswith(str(data)):
                    subprocess.run(["umount", "-l", target], check=False)
            shutil.rmtree(data, ignore_errors=True)


def ensure_proxy_image() -> None:
    """The proxy image, built on this host's engine when missing."""
    local = docker.from_env(environment={})
    with contextlib.suppress(docker.errors.ImageNotFound):
        local.images.get(PROXY_IMAGE)
        return
    _sh(
        "docker",
        "build",
        "-q",
        "-t",
        PROXY_IMAGE,
        str(PROXY_CONTEXT),
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
