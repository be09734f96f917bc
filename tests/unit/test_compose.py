"""cc-ci interpolates compose files itself, as the docker CLI does, so that no recipe value is
ever the environment of a process: the merged config must be the CLI's own, value for value,
and nothing a recipe supplies may run, steer a process or reach a host file."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import PlanError
from harness.lifecycle.planning import plan_app
from harness.recipe import compose, policy
from harness.recipe.appenv import app_env, parse_env
from harness.recipe.plan import resolve
from harness.swarm import stack_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "recipes"
REAL = ROOT / "tests" / "data" / "real-recipes"

TRICKY = """\
version: "3.8"
x-common: &common
  image: "cc-ci/busybox:${TAG:-bookworm}"
  environment:
    QUOTED: "yes"
    PLAIN: yes
    OCTAL: 010
    DEFAULTED: ${UNSET:-fallback}
    HARD: ${EMPTY-hard}
    SOFT: ${EMPTY:-soft}
    LITERAL: $$HOME and $${X}
    BARE_SET:
    BARE_UNSET:
    UNBRACED: $NAME-tail
services:
  app:
    <<: *common
    command: ["sh", "-c", "echo ${NAME} $$PATH ${MISSING}"]
    ports:
      - published: ${PORT}
        target: 8080
        mode: host
    deploy:
      replicas: ${REPLICAS}
      labels:
        - "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)"
        - "coop-cloud.${STACK_NAME}.version=1.0.0+1"
      update_config:
        max_failure_ratio: ${RATIO}
    configs:
      - source: conf
        target: /etc/x.conf
        mode: 0444
  worker:
    <<: *common
    environment:
      - LIST_SET=${NAME}
      - BARE_SET
      - BARE_UNSET
configs:
  conf:
    name: ${STACK_NAME}_conf_${CONF_VERSION}
    file: ./x.conf
"""

ENV = {
    "NAME": "cc",
    "PORT": "40001",
    "REPLICAS": "2",
    "RATIO": "0.5",
    "EMPTY": "",
    "BARE_SET": "from-the-app-env",
    "STACK_NAME": "t_localhost",
    "DOMAIN": "t.localhost",
    "CONF_VERSION": "v1",
}


def _cli_config(checkout: Path, files: tuple[str, ...], env: dict[str, str]) -> object:
    """What the docker CLI makes of ``files`` with ``env`` as its process environment —
    the reference cc-ci must equal (a test may hand the CLI an env; the product never)."""
    argv = ["docker", "stack", "config"]
    for name in files:
        argv += ["-c", name]
    done = subprocess.run(
        argv,
        cwd=checkout,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    merged = yaml.safe_load(done.stdout)
    for service in merged.get("services", {}).values():  # what cc-ci drops on purpose: an
        environment = service.get("environment") or {}  # unset bare key, which the CLI
        for key in [k for k, v in environment.items() if v is None]:  # would fill at deploy
            del environment[key]  # from its own environment
    return merged


def _checkouts() -> list[tuple[str, Path, tuple[str, ...]]]:
    cases: list[tuple[str, Path, tuple[str, ...]]] = [
        (f"{recipe.name}-{release.name}", release, ("compose.yml",))
        for recipe in sorted(DEMO.iterdir())
        for release in sorted(recipe.iterdir())
        if (release / ".env.sample").is_file()  # later releases are deltas on the first
    ]
    cases.append(("gaseous", REAL / "gaseous", ("compose.yml",)))
    return cases


@pytest.mark.parametrize(("case", "checkout", "files"), _checkouts(), ids=lambda c: str(c))
def test_the_merged_config_is_the_clis_own(
    case: str, checkout: Path, files: tuple[str, ...]
) -> None:
    env, _ = app_env(case, checkout, "t.localhost", "t_localhost", {})
    assert stack_config(resolve(checkout, files, env).texts) == _cli_config(checkout, files, env)


def test_every_interpolation_form_is_the_clis(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(TRICKY)
    (tmp_path / "x.conf").write_text("x\n")
    ours = stack_config(resolve(tmp_path, ("compose.yml",), ENV).texts)
    assert ours == _cli_config(tmp_path, ("compose.yml",), ENV)
    app = ours["services"]["app"]
    assert app["deploy"]["replicas"] == 2  # cast, as the CLI casts it
    assert app["environment"]["LITERAL"] == "$HOME and ${X}"
    assert app["environment"]["BARE_SET"] == "from-the-app-env"  # from the app's env, not ours
    assert "BARE_UNSET" not in app["environment"]
    assert ours["services"]["worker"]["environment"]["LIST_SET"] == "cc"


def test_a_bare_environment_key_never_comes_from_cc_cis_own_environment(tmp_path: Path) -> None:
    (tmp_path / "compose.yml").write_text(
        'version: "3.8"\nservices:\n  app:\n    image: x\n    environment: [HOME, CCCI_CANARY]\n'
    )
    os.environ["CCCI_CANARY"] = "cc-ci's own"
    try:
        merged = stack_config(resolve(tmp_path, ("compose.yml",), {}).texts)
    finally:
        del os.environ["CCCI_CANARY"]
    assert merged["services"]["app"].get("environment") in (None, {})


def _planted(tmp_path: Path, sample: str, abra: str = "", compose_text: str = "") -> Path:
    """A checkout whose own ``docker`` and ``bash_env`` programs leave a canary file when run."""
    checkout = tmp_path / "hostile"
    checkout.mkdir()
    canary = tmp_path / "canary"
    for program in ("docker", "evil.sh"):
        (checkout / program).write_text(f"#!/bin/sh\necho ran >>{canary}\n")
        (checkout / program).chmod(0o755)
    (checkout / ".env.sample").write_text(sample)
    (checkout / "abra.sh").write_text(abra)
    (checkout / "compose.yml").write_text(
        compose_text or 'version: "3.8"\nservices:\n  app:\n    image: cc-ci/busybox:bookworm\n'
    )
    return checkout


@pytest.mark.parametrize(
    ("sample", "abra"),
    [
        ("TYPE=hostile\nPATH=.\n", ""),
        ("TYPE=hostile\n", "export PATH=.\n"),
        ("TYPE=hostile\nDOCKER_HOST=unix:///nonexistent.sock\nPATH=.:/usr/bin\n", ""),
    ],
    ids=["env-sample-path", "abra-sh-path", "docker-host"],
)
def test_a_recipe_value_never_becomes_a_process_environment(
    tmp_path: Path, sample: str, abra: str
) -> None:
    checkout = _planted(tmp_path, sample, abra)
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    plan = plan_app("hostile", checkout, env, parsed)
    assert plan.images == {"app": "cc-ci/busybox:bookworm"}  # planned by the real CLI
    assert not (tmp_path / "canary").exists()  # the checkout's `docker` never ran


@pytest.mark.parametrize("owned", ["DOMAIN", "STACK_NAME", "TYPE"])
def test_abra_sh_may_not_set_the_apps_identity(tmp_path: Path, owned: str) -> None:
    checkout = _planted(tmp_path, "TYPE=hostile\n", f"export {owned}=victim_stack\n")
    with pytest.raises(PlanError, match=rf"^abra.sh: export {owned}: the app's {owned} is cc-ci's"):
        app_env("hostile", checkout, "h.localhost", "h_localhost", {})


def test_an_env_file_is_inlined_and_one_from_outside_is_never_read(tmp_path: Path) -> None:
    outside = tmp_path / "host-secrets.env"
    outside.write_text("HOST_TOKEN=canary-not-to-be-read\n")
    text = (
        'version: "3.8"\nservices:\n  app:\n    image: x\n'
        f"    env_file: [./app.env, {outside}]\n    environment: {{OWN: own}}\n"
    )
    checkout = _planted(tmp_path, "TYPE=hostile\nSET=app\n", compose_text=text)
    (checkout / "app.env").write_text("# a comment\nFROM_FILE=a=b \nOWN=file\nSET\n")
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    plan = plan_app("hostile", checkout, env, parsed)
    assert plan.config["services"]["app"]["environment"] == {
        "FROM_FILE": "a=b ",  # verbatim, as docker reads env files
        "OWN": "own",  # environment wins over env_file
        "SET": "app",  # a bare key from the app's env
    }
    (refusal,) = plan.policy
    assert refusal.rule == "outside-file"
    assert f"env_file {outside}" in refusal.value
    assert "canary-not-to-be-read" not in repr(plan)


def test_a_malformed_env_file_line_is_named_not_quoted(tmp_path: Path) -> None:
    text = 'version: "3.8"\nservices:\n  app:\n    image: x\n    env_file: app.env\n'
    checkout = _planted(tmp_path, "TYPE=hostile\n", compose_text=text)
    (checkout / "app.env").write_text("OK=1\nsecret value with spaces=x\n")
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    with pytest.raises(PlanError) as refused:
        plan_app("hostile", checkout, env, parsed)
    assert str(refused.value) == "env_file app.env:2: not a KEY=value line"


def test_a_config_file_from_outside_is_named_by_the_policy_not_probed(tmp_path: Path) -> None:
    text = (
        'version: "3.8"\nservices:\n  app:\n    image: x\n    configs: [a, b]\n'
        "configs:\n  a:\n    file: /etc/hostname\n  b:\n    file: /nonexistent/x\n"
    )
    checkout = _planted(tmp_path, "TYPE=hostile\n", compose_text=text)
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    plan = plan_app("hostile", checkout, env, parsed)  # no traceback, no "does not exist"
    assert {(v.rule, v.service) for v in plan.policy} == {
        ("outside-file", "a"),
        ("outside-file", "b"),
    }


def test_a_tenfold_expansion_is_refused_naming_the_variable() -> None:
    names = "abcdefghijkl"
    lines = ["a=xxxxxxxxxx"] + [f"{b}=" + f"${a}" * 10 for a, b in itertools.pairwise(names)]
    sample = "\n".join(lines) + "\n"
    assert len(sample) < 400
    with pytest.raises(
        PlanError, match=r"^\.env\.sample:5: e expands to 100000 bytes, over the 64"
    ):
        parse_env(sample)


def test_an_env_file_of_too_many_lines_is_refused() -> None:
    with pytest.raises(PlanError, match=r"^\.env\.sample: 1001 lines, over the 1000"):
        parse_env("A=1\n" * 1001)


def test_a_huge_compose_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    checkout = _planted(tmp_path, "TYPE=hostile\n")
    with (checkout / "compose.yml").open("a") as out:
        out.write("x-padding: |\n" + ("  " + "x" * 1022 + "\n") * 5000)
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    with pytest.raises(PlanError, match=r"^compose.yml: \d+ bytes, over the 4 MiB"):
        plan_app("hostile", checkout, env, parsed)


def test_an_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for n in range(1, 8):
        bomb += f"a{n}: &a{n} [{', '.join([f'*a{n - 1}' if n > 1 else '*a'] * 10)}]\n"
    document = compose.load(bomb, "compose.yml")  # small as written
    with pytest.raises(PlanError, match=rf"^compose.yml: more than {compose.MAX_VALUES} values"):
        compose.interpolate(document, {}, "compose.yml")


def test_a_secret_longer_than_swarm_allows_is_refused(tmp_path: Path) -> None:
    text = (
        'version: "3.8"\nservices:\n  app:\n    image: x\n    secrets: [s]\n'
        "secrets:\n  s:\n    external: true\n    name: ${STACK_NAME}_s_${SECRET_S_VERSION}\n"
    )
    checkout = _planted(
        tmp_path, "TYPE=hostile\nSECRET_S_VERSION=v1 # length=1000000000\n", "", text
    )
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    with pytest.raises(
        PlanError, match=r"^SECRET_S_VERSION: length=1000000000 is over the 500 KiB"
    ):
        plan_app("hostile", checkout, env, parsed)


def test_cc_ci_plan_exits_2_when_the_policy_refuses(tmp_path: Path) -> None:
    text = 'version: "3.8"\nservices:\n  app:\n    image: x\n    volumes: ["/:/host"]\n'
    checkout = _planted(tmp_path, "TYPE=hostile\n", compose_text=text)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "plan", str(checkout)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "policy host-root: service app: /:/host" in done.stdout


# What an attacker's review of these defences found, each now refused or contained.


def test_a_symlink_loop_or_an_unreadable_path_is_outside_not_a_crash(tmp_path: Path) -> None:
    text = (
        'version: "3.8"\nservices:\n  app:\n    image: x\n    configs: [loop, proc]\n'
        "configs:\n  loop:\n    file: ./a\n  proc:\n    file: /proc/self/cwd\n"
    )
    checkout = _planted(tmp_path, "TYPE=hostile\n", compose_text=text)
    os.symlink("b", checkout / "a")
    os.symlink("a", checkout / "b")
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    with pytest.raises(PlanError, match=r"symlink [ab] -> [ab] points outside"):
        policy.refuse_escaping_symlinks(checkout)  # the repo's own loop refuses it whole
    plan = plan_app("hostile", checkout, env, parsed)
    lines = {v.line() for v in plan.policy}
    assert {v.service for v in plan.policy} == {"loop", "proc"}
    assert not any(str(ROOT) in line or "python" in line for line in lines), lines  # no host path


def test_a_mount_that_is_neither_a_volume_nor_tmpfs_is_refused(tmp_path: Path) -> None:
    text = (
        'version: "3.8"\nservices:\n  app:\n    image: x\n    volumes:\n'
        "      - {type: npipe, source: /var/run/docker.sock, target: /s}\n"
    )
    checkout = _planted(tmp_path, "TYPE=hostile\n", compose_text=text)
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    (refusal,) = plan_app("hostile", checkout, env, parsed).policy
    assert (refusal.rule, refusal.value) == ("bind-mount", "a npipe mount /var/run/docker.sock:/s")


def test_a_range_of_published_ports_is_refused_by_its_count(tmp_path: Path) -> None:
    text = 'version: "3.8"\nservices:\n  app:\n    image: x\n    ports: ["30000-32767:80"]\n'
    checkout = _planted(tmp_path, "TYPE=hostile\n", compose_text=text)
    env, parsed = app_env("hostile", checkout, "h.localhost", "h_localhost", {})
    (refusal,) = plan_app("hostile", checkout, env, parsed, publishes_ports=True).policy
    assert refusal.value == "ports: 2768 published (at most 10)"


@pytest.mark.parametrize(
    ("asked", "capped"),
    [
        ({"cpus": "0", "pids": -1}, {"cpus": "1", "pids": 1024}),  # 0 / -1: no limit to swarm
        ({"cpus": "0x10"}, {"cpus": "1"}),  # not a number cc-ci reads
        ({"memory": "1T"}, {"memory": "1G"}),
    ],
)
def test_a_limit_that_turns_the_limit_off_is_lowered_to_the_cap(
    asked: dict[str, object], capped: dict[str, object]
) -> None:
    from harness.lifecycle.deploy import _bound, limits

    services = {"app": {"deploy": {"resources": {"limits": dict(asked)}}}}
    _bound(services, limits({}), [])
    got = services["app"]["deploy"]["resources"]["limits"]
    assert {k: got[k] for k in capped} == capped
