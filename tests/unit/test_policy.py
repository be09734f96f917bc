"""The deploy policy on resolved plans (Docker's own loader, `docker stack config`): every
rule, allowances, files from outside the checkout, and the demo recipes untouched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.errors import MetaError
from harness.recipe import meta, policy
from harness.recipe.appenv import app_env
from harness.recipe.catalogue import DEFAULT_CATALOGUE
from harness.recipe.plan import make_plan, merged_config
from harness.recipe.policy import PolicyError

DEMO = Path(__file__).resolve().parents[2] / "demo" / "recipes"

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
volumes:
  data:
  bound:
    driver_opts: {type: none, o: bind, device: /srv}
"""


def _config(tmp_path: Path, compose: str) -> dict:
    (tmp_path / "compose.yml").write_text(compose)
    return merged_config(tmp_path, ("compose.yml",), {})


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
        ("low-port", "ports: 80:8080"),  # 8443 is not a privileged port
    }
    assert {v.service for v in found} == {"app"}


def test_ports_the_platform_drops_are_not_published(tmp_path: Path) -> None:
    found = policy.check(
        _config(tmp_path, HOSTILE), stack="s", domain="d.localhost", publishes_ports=False
    )
    assert "low-port" not in {v.rule for v in found}


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
    assert make_plan(recipe, tmp_path, env, sample).policy == ()


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
        make_plan("r", checkout, env, app_env("r", checkout, "d", "s", {})[1])
    (checkout / ".env.sample").unlink()
    os.symlink("/etc/hostname", checkout / ".env.sample")
    with pytest.raises(PolicyError, match=r"env file \.env\.sample -> /etc/hostname"):
        app_env("r", checkout, "d", "s", {})
