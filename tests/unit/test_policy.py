"""The deploy policy on resolved plans (Docker's own loader, `docker stack config`): every
rule, allowances, files from outside the checkout, and the demo and real recipes untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, TypedDict

import pytest
import yaml

from harness.config import DEFAULT_CATALOGUE
from harness.errors import MetaError
from harness.lifecycle.planning import plan_app
from harness.recipe import meta, policy
from harness.recipe.appenv import app_env
from harness.recipe.plan import resolve
from harness.recipe.policy import PolicyError
from harness.swarm import stack_config

DEMO = Path(__file__).resolve().parents[2] / "demo" / "recipes"
REAL = Path(__file__).resolve().parents[1] / "data" / "real-recipes"

HOSTILE = """\
version: "3.8"
services:
  app:
    image: cc-ci/busybox:bookworm
    privileged: true
    network_mode: host
    pid: host
    ipc: host
    userns_mode: host
    cap_add: [SYS_ADMIN]
    devices: ["/dev/sda:/dev/sda"]
    security_opt: ["apparmor=unconfined", "no-new-privileges:true"]
    sysctls: {net.core.somaxconn: 1024}
    volumes:
      - /:/host
      - /var/run/docker.sock:/var/run/docker.sock
      - type: bind
        source: /etc
        target: /hostetc
      - data:/data
      - bound:/bound
    ports:
      - "80:8080"
      - "8443:443"
      - "30080:80"
      - target: 9000
volumes:
  data:
  bound:
    driver_opts: {type: none, o: bind, device: /srv}
"""


def _config(tmp_path: Path, compose: str) -> dict[str, Any]:
    (tmp_path / "compose.yml").write_text(compose)
    config: dict[str, Any] = stack_config(resolve(tmp_path, ("compose.yml",), {}).texts)
    return config


class _Check(TypedDict):
    """The keyword arguments of ``policy.check`` besides the config."""

    stack: str
    domain: str
    publishes_ports: bool


def test_every_rule_names_the_service_and_the_value(tmp_path: Path) -> None:
    found = policy.check(
        _config(tmp_path, HOSTILE), stack="s", domain="d.localhost", publishes_ports=True
    )
    assert {(v.rule, v.value) for v in found} == {
        ("host-root", "/:/host"),
        ("docker.sock", "/var/run/docker.sock:/var/run/docker.sock"),
        ("bind-mount", "/etc:/hostetc"),
        ("bind-mount", "volume bound binds /srv:/bound"),
        ("privileged", "privileged: true"),
        ("host-network", "network_mode: host"),
        ("host-pid", "pid: host"),
        ("host-ipc", "ipc: host"),
        ("host-userns", "userns_mode: host"),
        ("cap_add", "cap_add: SYS_ADMIN"),
        ("devices", "devices: /dev/sda:/dev/sda"),
        ("security_opt", "security_opt: apparmor=unconfined"),  # no-new-privileges:true is fine
        ("sysctls", "sysctls: net.core.somaxconn=1024"),
        ("low-port", "ports: 80:8080"),
        ("port-range", "ports: 8443:443 (allowed: 30000-32767)"),  # 30080 is in the range
    }
    assert {v.service for v in found} == {"app"}


def test_ports_the_platform_drops_are_not_published(tmp_path: Path) -> None:
    found = policy.check(
        _config(tmp_path, HOSTILE), stack="s", domain="d.localhost", publishes_ports=False
    )
    assert not {"low-port", "port-range"} & {v.rule for v in found}


# What `docker stack deploy` honours, asked for in another app's or the host's name.
SWARM_HOSTILE = """\
version: "3.9"
services:
  app:
    image: cc-ci/busybox:bookworm
    networks: [proxy, hostnet, other, br]
    volumes: [victim:/v, named:/n, own:/o]
    configs: [conf, named_conf]
    secrets: [foreign, bare]
    logging: {driver: syslog, options: {syslog-address: "udp://127.0.0.1:9"}}
    deploy:
      replicas: 4
      labels:
        traefik.http.routers.s.rule: "Host(`d.localhost`) || Host(`victim.example.org`)"
        traefik.http.routers.s.priority: "2147483647"
        traefik.tcp.routers.s-t.rule: "HostSNI(`*`)"
networks:
  proxy: {external: true}
  hostnet: {external: true, name: host}
  other: {name: victim_internal}
  br:
    driver: bridge
    ipam: {config: [{subnet: 172.31.250.0/24}]}
volumes:
  victim: {external: true, name: victim_data}
  named: {name: victim_other}
  own: {name: s_own}
configs:
  conf: {external: true, name: victim_conf}
  named_conf: {name: victim_conf_v1, file: ./compose.yml}
secrets:
  foreign: {external: true, name: victim_db_password_v1}
  bare: {external: true}
"""


def test_what_swarm_honours_stays_in_the_apps_namespace(tmp_path: Path) -> None:
    found = policy.check(
        _config(tmp_path, SWARM_HOSTILE), stack="s", domain="d.localhost", publishes_ports=True
    )
    assert {(v.rule, v.kind, v.service, v.value) for v in found} == {
        ("logging", "service", "app", "logging driver: syslog"),
        (
            "router-host",
            "service",
            "app",
            "label traefik.http.routers.s.rule=Host(`d.localhost`) || Host(`victim.example.org`)"
            ", the app's domain is d.localhost",
        ),
        (
            "router-priority",
            "service",
            "app",
            "label traefik.http.routers.s.priority=2147483647",
        ),
        (
            "router-host",
            "service",
            "app",
            "label traefik.tcp.routers.s-t.rule=HostSNI(`*`), the app's domain is d.localhost",
        ),
        ("replicas", "service", "app", "replicas: 4 (at most 3)"),
        ("volume-name", "volume", "victim", "external: true (name victim_data)"),
        ("volume-name", "volume", "named", "name: victim_other, outside the stack's s_*"),
        ("config-name", "config", "conf", "external: true (name victim_conf)"),
        ("config-name", "config", "named_conf", "name: victim_conf_v1, outside the stack's s_*"),
        (
            "secret-name",
            "secret",
            "foreign",
            "name: victim_db_password_v1, outside the stack's s_*",
        ),
        ("secret-name", "secret", "bare", "name: bare, outside the stack's s_*"),
        ("network-name", "network", "hostnet", "external: true (name host)"),
        ("network-name", "network", "other", "name: victim_internal, outside the stack's s_*"),
        ("network-driver", "network", "br", "driver: bridge"),
        (
            "network-ipam",
            "network",
            "br",
            "ipam: {'config': [{'subnet': '172.31.250.0/24'}]}",
        ),
    }
    assert next(v for v in found if v.service == "victim").line() == (
        "policy volume-name: volume victim: external: true (name victim_data)"
        f" ({policy.RULES['volume-name']})"
    )


@pytest.mark.parametrize(
    ("rule", "refused"),
    [
        ("Host(`d.localhost`)", False),
        ("Host(`D.localhost`) && PathPrefix(`/api`)", False),
        ("(Host(`d.localhost`) && Path(`/a`)) || Host(`d.localhost`)", False),
        ("Host(`d.localhost`, `other.localhost`)", True),
        ("PathPrefix(`/`)", True),  # every host
        ("Host(`d.localhost`) || PathPrefix(`/`)", True),
        ("!Host(`d.localhost`)", True),
        ("HostRegexp(`{any:.+}`)", True),
        ("Host(`d.localhost.evil.org`)", True),
        # A host matcher's name inside another matcher's argument is text, not a host.
        ("Host(`d.localhost`) || PathRegexp(`^/|Host(d.localhost)`)", True),
        ("Host(`d.localhost`) && (PathPrefix(`/`) || Host(`d.localhost`))", False),
        ("(Host(`d.localhost`) || Path(`/x`)) && Path(`/y`)", True),
        ("Host(`d.localhost`) && Path(`/a`", True),  # unbalanced
    ],
)
def test_a_router_routes_the_apps_own_domain_only(tmp_path: Path, rule: str, refused: bool) -> None:
    compose = (
        'version: "3.8"\nservices:\n  app:\n    image: x:1\n    deploy:\n      labels:\n'
        f"        traefik.http.routers.s.rule: '{rule}'\n"
    )
    found = policy.check(
        _config(tmp_path, compose), stack="s", domain="d.localhost", publishes_ports=True
    )
    assert [v.rule for v in found] == (["router-host"] if refused else [])


@pytest.mark.parametrize(
    "label",
    [
        "traefik.HTTP.routers.s.Rule: 'Host(`victim.example.org`)'",  # Traefik ignores case
        "traefik.http.routers.s.PRIORITY: '2147483647'",
        "traefik.http.routers.victim.rule: 'Host(`d.localhost`)'",  # another app's router
        "traefik.http.routers.s.service: 'api@internal'",  # the proxy's own dashboard
    ],
)
def test_router_labels_are_read_as_traefik_reads_them(tmp_path: Path, label: str) -> None:
    compose = (
        'version: "3.8"\nservices:\n  app:\n    image: x:1\n    deploy:\n      labels:\n'
        f"        {label}\n"
    )
    found = policy.check(
        _config(tmp_path, compose), stack="s", domain="d.localhost", publishes_ports=True
    )
    assert {v.rule for v in found} & {"router-host", "router-priority"}, found


def test_replicas_are_bounded_per_service_and_per_app(tmp_path: Path) -> None:
    # 6 x 3, a global service (one task per node: counted as one) and one of 1: 20 in all.
    services = "".join(f"  s{n}:\n    image: x:1\n    deploy: {{replicas: 3}}\n" for n in range(6))
    compose = (
        f'version: "3.8"\nservices:\n{services}'
        "  g:\n    image: x:1\n    deploy: {mode: global}\n  one:\n    image: x:1\n"
    )
    check: _Check = {"stack": "s", "domain": "d.localhost", "publishes_ports": True}
    assert policy.check(_config(tmp_path, compose), **check) == []
    found = policy.check(_config(tmp_path, compose + "  two:\n    image: x:1\n"), **check)
    assert [v.line() for v in found] == [
        f"policy replicas: app s: 21 replicas in all (at most 20) ({policy.RULES['replicas']})"
    ]


def test_the_apps_own_names_and_the_proxy_network_are_fine(tmp_path: Path) -> None:
    compose = """\
version: "3.8"
services:
  app:
    image: x:1
    networks: [proxy, internal]
    volumes: [data:/data, named:/n]
    configs: [conf]
    secrets: [pw]
    logging: {options: {max-size: 1g}}
    deploy:
      mode: global
      labels: {traefik.http.routers.s.rule: "Host(`d.localhost`)"}
networks:
  proxy: {external: true}
  internal: {driver: overlay, internal: true}
volumes:
  data:
  named: {name: s_named}
configs:
  conf: {name: s_conf_v1, file: ./compose.yml}
secrets:
  pw: {external: true, name: s_pw_v1}
"""
    check: _Check = {"stack": "s", "domain": "d.localhost", "publishes_ports": True}
    assert policy.check(_config(tmp_path, compose), **check) == []


def test_a_refusal_is_one_line_per_rule_and_says_how_to_allow(tmp_path: Path) -> None:
    found = policy.check(
        _config(tmp_path, HOSTILE), stack="s", domain="d.localhost", publishes_ports=True
    )
    with pytest.raises(PolicyError) as refused:
        policy.enforce(found, {})
    lines = str(refused.value).splitlines()
    assert lines[0] == (
        "policy host-root: service app: /:/host (mounting / hands the container the host's files)"
    )
    assert lines[-1].endswith('ALLOW = {"host-root": "why it needs it"}')
    allowed = dict.fromkeys(policy.RULES, "a test")
    assert policy.enforce(found, allowed) == found


def test_a_recipe_dir_allows_rules_by_name(tmp_path: Path) -> None:
    (tmp_path / "recipe_meta.py").write_text('ALLOW = {"docker.sock": "the proxy reads labels"}\n')
    assert dict(meta.load(tmp_path).ALLOW) == {"docker.sock": "the proxy reads labels"}
    (tmp_path / "recipe_meta.py").write_text('ALLOW = {"docker.socket": "typo"}\n')
    with pytest.raises(MetaError, match=r"did you mean 'docker\.sock'"):
        meta.load(tmp_path)


@pytest.mark.parametrize(
    "release", sorted(f"{p.parent.name}/{p.name}" for p in DEMO.glob("*/*") if p.is_dir())
)
def test_the_demo_recipes_need_no_allowance(release: str, tmp_path: Path) -> None:
    recipe, tag = release.split("/")
    repo = Path(DEFAULT_CATALOGUE) / recipe  # built by scripts/setup: a tag per release
    archive = subprocess.run(["git", "-C", str(repo), "archive", tag], capture_output=True)
    assert archive.returncode == 0, archive.stderr
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    env, sample = app_env(recipe, tmp_path, "d-1.localhost", "d-1_localhost", {})
    env.update({k: "v1" for k in sample.values if k.startswith("SECRET_")})
    assert plan_app(recipe, tmp_path, env, sample).policy == ()


@pytest.mark.parametrize("name", ["custom-php-2021", "gaseous"])
def test_the_real_recipes_need_no_allowance(name: str, tmp_path: Path) -> None:
    """The real apps (the proxy, traefik-2021, is the platform's own: it needs the socket and
    ports 80 and 443), with the files their copies leave out, as abra sees the repository."""
    checkout = tmp_path / name
    shutil.copytree(REAL / name, checkout)
    source = yaml.safe_load((checkout / "SOURCE.txt").read_text())
    for missing in set(source["all_files_in_HEAD"]) - set(source["copied_files"]):
        (checkout / missing).touch()
    env, sample = app_env(name, checkout, "d-1.localhost", "d-1_localhost", {})
    assert plan_app(name, checkout, env, sample).policy == ()


def test_files_from_outside_the_checkout_are_named(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("A=1\n")
    compose = (
        'version: "3.8"\nservices:\n  app:\n    image: x:1\n    env_file: [/etc/hostname]\n'
        "    configs: [leak]\nconfigs:\n  leak:\n    file: /etc/hostname\n"
    )
    documents = {"compose.yml": yaml.safe_load(compose)}
    found = policy.escapes(tmp_path, _config(tmp_path, compose), documents)
    assert [(v.rule, v.service) for v in found] == [
        ("outside-file", "leak"),
        ("outside-file", "app"),
    ]


def test_a_symlink_out_of_the_checkout_refuses_the_repo(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text("version: '3.8'\n")
    (tmp_path / "inside.conf").write_text("ok\n")
    os.symlink("inside.conf", tmp_path / "fine.conf")
    policy.refuse_escaping_symlinks(tmp_path)
    os.symlink("/etc/shadow", tmp_path / "shadow.conf")
    with pytest.raises(PolicyError, match=r"symlink shadow.conf -> /etc/shadow points outside"):
        policy.refuse_escaping_symlinks(tmp_path)


def test_compose_files_and_env_samples_outside_are_never_read(tmp_path: Path) -> None:
    checkout = tmp_path / "r"
    checkout.mkdir()
    (tmp_path / "secret.yml").write_text("x: 1\n")
    (checkout / ".env.sample").write_text("TYPE=r\n")
    env = {"STACK_NAME": "s", "DOMAIN": "d", "COMPOSE_FILE": "../secret.yml"}
    with pytest.raises(PolicyError, match=r"compose file \.\./secret\.yml"):
        plan_app("r", checkout, env, app_env("r", checkout, "d", "s", {})[1])
    (checkout / ".env.sample").unlink()
    os.symlink("/etc/hostname", checkout / ".env.sample")
    with pytest.raises(PolicyError, match=r"env file \.env\.sample -> /etc/hostname"):
        app_env("r", checkout, "d", "s", {})
