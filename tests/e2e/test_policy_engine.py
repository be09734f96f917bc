"""The deploy policy where the effect is the engine's: what a recipe names on the swarm
(another run's volume and config, the host's network, a bridge with a subnet, a logging
driver, a port) is refused before anything is created, and what it sizes (limits,
reservations, logs) reaches the running containers bounded; the backup helper's volumes
are the run's and go with it."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator

import docker.errors
import pytest

from harness.lifecycle import teardown
from harness.lifecycle.labels import RUN_LABEL, run_labels
from harness.recipe.policy import PORTS
from harness.swarm import engine, run_helper
from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e


def _hostile(victim: str) -> str:
    """WEB_APP asking for the victim's volume and config, the host's network, a bridge of
    its own with a subnet, syslog, a port outside the platform's range, another domain's
    traffic at top priority, and 5 replicas."""
    return (
        WEB_APP.replace(
            "    networks: [proxy]\n",
            "    networks: [proxy, hostnet, br]\n"
            "    volumes: [stolen:/stolen]\n"
            "    configs: [conf]\n"
            "    logging: {driver: syslog, options: {syslog-address: 'udp://127.0.0.1:9'}}\n"
            "    ports: ['8443:8080']\n",
        )
        .replace(
            "    deploy:\n      labels:\n",
            "    deploy:\n      replicas: 5\n      labels:\n"
            "        - 'traefik.http.routers.x.rule=Host(`victim.example.org`)'\n"
            "        - 'traefik.http.routers.x.priority=2147483647'\n",
        )
        .replace(
            "    external: true\n",
            "    external: true\n"
            "  hostnet: {external: true, name: host}\n"
            "  br:\n    driver: bridge\n    ipam: {config: [{subnet: 172.31.250.0/24}]}\n"
            f"volumes:\n  stolen: {{external: true, name: {victim}_data}}\n"
            f"configs:\n  conf: {{name: {victim}_conf_v1, file: compose.yml}}\n",
        )
    )


def test_what_names_another_apps_or_the_hosts_resources_is_refused(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = f"victim-{secrets.token_hex(4)}_localhost"
    labels = run_labels(f"victim{secrets.token_hex(3)}")
    client = engine.client()
    volume = client.volumes.create(f"{victim}_data", labels=labels)
    config = client.configs.create(name=f"{victim}_conf_v1", data=b"victim's", labels=labels)
    try:
        workspace.recipe("hostile", [("1.0.0+1", _hostile(victim))])
        monkeypatch.setenv("CCCI_IPVS", "yes")  # a platform that publishes the recipe's ports
        session = workspace.pytest("recipes/hostile", "--tiers", "install")
        assert session.tier_outcomes == {"recipes/hostile::install": "FAILED"}, session.output
        for line in (
            "policy logging: service app: logging driver: syslog",
            f"policy port-range: service app: ports: 8443:8080 (allowed: {PORTS[0]}-{PORTS[1]})",
            "policy router-host: service app: label"
            " traefik.http.routers.x.rule=Host(`victim.example.org`), the app's domain is",
            "policy router-priority: service app: label traefik.http.routers.x.priority=2147483647",
            "policy replicas: service app: replicas: 5 (at most 3)",
            f"policy volume-name: volume stolen: external: true (name {victim}_data)",
            f"policy config-name: config conf: name: {victim}_conf_v1, outside the stack's",
            "policy network-name: network hostnet: external: true (name host)",
            "policy network-driver: network br: driver: bridge",
            "policy network-ipam: network br: ipam:",
        ):
            assert line in session.output, line
        (doc,) = session.results()
        assert doc["tiers"]["install"]["failure_class"] == "recipe"
        session.assert_nothing_left()
        # The victims are as they were: nothing mounted, relabelled or removed them.
        volume.reload()
        assert volume.attrs["Labels"] == labels
        assert client.configs.get(config.id).attrs["Spec"]["Labels"] == labels
        subnets = [
            c.get("Subnet")
            for n in client.networks.list()
            for c in (n.attrs.get("IPAM") or {}).get("Config") or ()
        ]
        assert "172.31.250.0/24" not in subnets
    finally:
        config.remove()
        volume.remove()


GREEDY = WEB_APP.replace(
    "    deploy:\n",
    "    logging: {driver: json-file, options: {max-size: 1g, max-file: '100'}}\n"
    "    deploy:\n"
    "      resources:\n"
    "        limits: {memory: 1000G, cpus: '1.5', pids: 4000000}\n"
    "        reservations: {memory: 12G, cpus: '1.5'}\n",
).replace('version: "3.8"', 'version: "3.9"')

BOUNDS_TEST = """\
from harness.swarm import engine


def test_bounds(app):
    namespace = {"label": f"com.docker.stack.namespace={app.app}"}
    (container,) = engine.client().containers.list(filters=namespace)
    host = container.attrs["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (1 << 30, 10**9, 1024)
    assert host["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "3"},
    }
    (service,) = engine.client().services.list(filters=namespace)
    reserved = service.attrs["Spec"]["TaskTemplate"]["Resources"]["Reservations"]
    assert reserved == {"MemoryBytes": 1 << 30, "NanoCPUs": 10**9}
"""


def test_what_a_recipe_sizes_reaches_the_containers_capped(workspace: Workspace) -> None:
    recipe_dir = workspace.recipe("greedy", [("1.0.0+1", GREEDY)])
    (recipe_dir / "functional").mkdir()
    (recipe_dir / "functional" / "test_bounds.py").write_text(BOUNDS_TEST)
    session = workspace.pytest("recipes/greedy", "--tiers", "install,custom")
    outcome = session.outcomes["recipes/greedy/functional/test_bounds.py::test_bounds"]
    assert outcome == "PASSED", session.output
    (doc,) = session.results()
    assert "service app: limit memory 1073741824000 lowered to 1G" in str(doc)
    session.assert_nothing_left()


@pytest.fixture
def outside() -> Iterator[tuple[str, str, str]]:
    """A network namespace of the test's own, linked to the host by a veth pair: a place
    off the host's loopback (name, the host's IPv4 address, its IPv6 address there)."""
    tag = secrets.token_hex(3)
    ns, host, peer = f"ccci-pol-{tag}", f"cp{tag}h", f"cp{tag}n"
    n = int(tag[:2], 16)
    v4, v6 = f"10.250.{n}.1", f"fd77:{n:x}::1"

    def ip(*argv: str, netns: str | None = None) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        subprocess.run([*prefix, "ip", *argv], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("link", "add", host, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", ns)
        ip("addr", "add", f"{v4}/30", "dev", host)
        ip("-6", "addr", "add", f"{v6}/64", "dev", host, "nodad")
        ip("link", "set", host, "up")
        ip("addr", "add", f"10.250.{n}.2/30", "dev", peer, netns=ns)
        ip("-6", "addr", "add", f"fd77:{n:x}::2/64", "dev", peer, "nodad", netns=ns)
        ip("link", "set", peer, "up", netns=ns)
        yield ns, v4, v6
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


PORT_TEST = """\
import subprocess


def test_loopback_only(app):
    port = app.base_url.rsplit(":", 1)[1]
    assert app.get("/").text == "ok\\n"  # through 127.0.0.1
    for address in ("{v4}", "[{v6}]"):
        outside = subprocess.run(
            ["ip", "netns", "exec", "{ns}", "curl", "-sS", "-m", "3", f"http://{{address}}:{{port}}/"],
            capture_output=True, text=True,
        )
        assert outside.returncode == 28, (address, outside.stdout, outside.stderr)  # timed out
"""


def test_a_host_mode_port_answers_on_loopback_only(
    workspace: Workspace, outside: tuple[str, str, str]
) -> None:
    ns, v4, v6 = outside
    recipe_dir = workspace.recipe("ported", [("1.0.0+1", WEB_APP)])
    (recipe_dir / "functional").mkdir()
    (recipe_dir / "functional" / "test_port.py").write_text(PORT_TEST.format(ns=ns, v4=v4, v6=v6))
    session = workspace.pytest("recipes/ported", "--tiers", "install,custom")
    outcome = session.outcomes["recipes/ported/functional/test_port.py::test_loopback_only"]
    assert outcome == "PASSED", session.output
    session.assert_nothing_left()
    (run_id,) = session.run_ids()
    for tool in ("iptables", "ip6tables"):  # the run's rules went with it
        rules = subprocess.run([tool, "-t", "mangle", "-S"], capture_output=True, text=True)
        assert f"{RUN_LABEL}={run_id}" not in rules.stdout


def test_a_volume_the_helper_creates_goes_with_the_run() -> None:
    run_id = f"helper{secrets.token_hex(3)}"
    name = f"ccci-helper-{run_id}_data"  # no task of an app has made it
    client = engine.client()
    try:
        done = run_helper("echo x >/v/file", {name: "/v"}, run_labels(run_id))
        assert done.exit_code == 0, done.stderr
        assert client.volumes.get(name).attrs["Labels"] == run_labels(run_id)
        teardown.remove_run(run_id)
        assert teardown.leftovers(run_id) == {}
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(name)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(name).remove()
