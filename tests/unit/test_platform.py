"""The per-run deploy config: run labels, stamps, and the overlay each platform needs."""

from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import MetaError, PlanError
from harness.lifecycle.deploy import (
    Stamp,
    deploy_config,
    limits,
    memory_bytes,
    render_deploy_file,
    secret_value,
)
from harness.lifecycle.labels import HOST_LABEL, RUN_LABEL, host_id, run_labels
from harness.lifecycle.planning import plan_app
from harness.lifecycle.platform import Platform
from harness.recipe.appenv import app_env
from harness.recipe.plan import Plan, SecretPlan, resolve
from harness.swarm import stack_config

DEMO = Path(__file__).resolve().parents[2] / "demo" / "recipes" / "radicale" / "1.0.0+3.1.9"


@pytest.fixture(scope="module")
def plan() -> Plan:
    env, sample = app_env("radicale", DEMO, "r-1.localhost", "r-1_localhost", {})
    return plan_app("radicale", DEMO, env, sample)


STAMP = Stamp(chaos=True, chaos_version="0123abcd+U")


def test_everything_carries_the_run_label_and_the_app_the_stamp(plan: Plan) -> None:
    config, _ = deploy_config(plan, Platform("remote", ipvs=True), "run42", STAMP, None)
    app = config["services"]["app"]
    assert app["deploy"]["labels"][RUN_LABEL] == "run42"
    assert app["labels"][RUN_LABEL] == "run42"  # containers too, for a forced teardown
    assert app["deploy"]["labels"]["coop-cloud.r-1_localhost.chaos"] == "true"
    assert app["deploy"]["labels"]["coop-cloud.r-1_localhost.chaos-version"] == "0123abcd+U"
    assert app["deploy"]["labels"]["coop-cloud.r-1_localhost.recipe"] == "radicale"
    assert app["deploy"]["labels"]["coop-cloud.r-1_localhost.version"] == "1.0.0+3.1.9"
    for section in ("volumes", "configs", "networks"):
        for spec in config[section].values():
            assert spec["labels"][RUN_LABEL] == "run42", section
    assert config["networks"]["proxy"]["external"] is True  # a real swarm has its proxy
    assert plan.config["services"]["app"]["deploy"]["labels"].get(RUN_LABEL) is None


def test_local_platform_without_ipvs_gets_the_compat_overlay(plan: Plan) -> None:
    config, overlays = deploy_config(plan, Platform("local", ipvs=False), "run42", STAMP, 40123)
    app = config["services"]["app"]
    assert app["deploy"]["endpoint_mode"] == "dnsrr"
    assert app["ports"] == [{"target": 5232, "published": 40123, "protocol": "tcp", "mode": "host"}]
    assert app["deploy"]["update_config"]["order"] == "stop-first"
    assert "external" not in config["networks"]["proxy"]
    assert overlays == [
        "services app: limits memory 1G, cpus 1, pids 1024 where the recipe sets none",
        "all services: json-file logs of at most max-size 10m, max-file 3",
        "network proxy: created by the stack (no shared proxy network here)",
        "all services: endpoint_mode dnsrr (no IPVS for VIPs)",
        "service app: port 5232 published in host mode on 127.0.0.1:40123, stop-first updates",
    ]


def test_secret_values_follow_their_modifiers() -> None:
    hex_secret = SecretPlan(
        "db_password", "s_db_password_v1", "SECRET_DB_PASSWORD_VERSION", length=40, charset="hex"
    )
    value = secret_value(hex_secret, "kinto")
    assert len(value) == 40
    assert set(value) <= set("0123456789abcdef")
    assert secret_value(hex_secret, "kinto") != value
    with pytest.raises(PlanError, match="unknown charset=emoji"):
        secret_value(SecretPlan("x", "x", "X", charset="emoji"), "kinto")


def test_a_given_secret_is_taken_only_from_the_variable_naming_its_recipe() -> None:
    given = SecretPlan("api_key", "s_api_key_v1", "SECRET_API_KEY_VERSION", generate=False)
    assert secret_value(given, "my-app", environ={"CCCI_SECRET_MY_APP_API_KEY": "k"}) == "k"
    with pytest.raises(PlanError) as refused:  # another recipe's value is not taken
        secret_value(given, "kinto", environ={"CCCI_SECRET_OTHER_API_KEY": "o"})
    assert str(refused.value) == (
        "secret not generated: api_key (generate=false; give its value as"
        " CCCI_SECRET_KINTO_API_KEY)"
    )
    with pytest.raises(PlanError) as refused:  # nor an unscoped one, any more
        secret_value(given, "kinto", environ={"CCCI_SECRET_API_KEY": "k"})
    assert str(refused.value) == (
        "secret not generated: api_key (generate=false; give its value as"
        " CCCI_SECRET_KINTO_API_KEY; CCCI_SECRET_API_KEY is set but not taken: it names no"
        " recipe)"
    )


def test_deploy_file_keeps_strings_strings_and_dollars_literal(tmp_path: Path) -> None:
    config = {
        "services": {
            "app": {
                "command": ["sh", "-c", 'echo "$(cat /x)"'],
                "deploy": {"labels": {RUN_LABEL: "2905e9", "chaos-version": "12345e67"}},
                "ports": [{"target": 80, "published": 40123}],
            }
        }
    }
    text = render_deploy_file(config)
    assert '"2905e9"' in text  # bare, YAML 1.2 reads it as 2.905e+12
    assert "$$(cat /x)" in text  # deploy interpolates again: $ must stay escaped
    (tmp_path / "compose.yml").write_text(text)
    merged = stack_config(resolve(tmp_path, ("compose.yml",), {}).texts)  # Docker's own loader
    app = merged["services"]["app"]
    assert app["deploy"]["labels"] == {RUN_LABEL: "2905e9", "chaos-version": "12345e67"}
    assert app["command"][2] == 'echo "$(cat /x)"'
    assert app["ports"][0]["published"] == 40123


def test_implicit_default_network_is_labelled(plan: Plan) -> None:
    config = {**plan.config, "services": {**plan.config["services"], "init": {"image": "x"}}}
    with_init = Plan(**{**plan.__dict__, "config": config})
    labelled, _ = deploy_config(with_init, Platform("remote", ipvs=True), "run42", STAMP, None)
    assert labelled["networks"]["default"]["labels"] == run_labels("run42")
    assert run_labels("run42")[HOST_LABEL] == host_id()  # whose leases judge the run


def test_every_service_gets_limits_where_the_recipe_sets_none(plan: Plan) -> None:
    own = copy.deepcopy(plan)
    own.config["services"]["app"]["deploy"]["resources"] = {"limits": {"memory": "104857600"}}
    config, _ = deploy_config(
        own, Platform("remote", ipvs=True), "r", STAMP, None, limits({"cpus": "2"})
    )
    assert config["version"] == "3.9"  # the first with a pids limit
    assert config["services"]["app"]["deploy"]["resources"]["limits"] == {
        "memory": "104857600",  # the recipe's own, below the cap
        "cpus": "2",  # raised by RESOURCES
        "pids": 1024,
    }


GREEDY = """\
version: "3.9"
services:
  app:
    image: x:1
    logging: {driver: json-file, options: {max-size: 1g, max-file: "100", labels: a}}
    deploy:
      resources:
        limits: {memory: 1000G, cpus: "1.5", pids: 4000000}
        reservations: {memory: 12G, cpus: "1.5"}
  small:
    image: x:1
    logging: {options: {max-size: 1m, max-file: "2"}}
    deploy:
      resources:
        limits: {memory: 64M, cpus: "0.5", pids: 100}
        reservations: {memory: 32M}
"""


def _greedy(
    plan: Plan, tmp_path: Path, resources: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    (tmp_path / "compose.yml").write_text(GREEDY)
    # Docker's own loader, as plans are
    merged = stack_config(resolve(tmp_path, ("compose.yml",), {}).texts)
    greedy = Plan(**{**plan.__dict__, "config": merged})
    return deploy_config(greedy, Platform("remote", ipvs=True), "r", STAMP, None, limits(resources))


def test_limits_and_reservations_above_the_cap_are_lowered_to_it(
    plan: Plan, tmp_path: Path
) -> None:
    config, overlays = _greedy(plan, tmp_path, {})
    app, small = (config["services"][s]["deploy"]["resources"] for s in ("app", "small"))
    assert app == {
        "limits": {"memory": "1G", "cpus": "1", "pids": 1024},
        "reservations": {"memory": "1G", "cpus": "1"},
    }
    assert small == {  # asking for less is fine
        "limits": {"memory": "67108864", "cpus": "0.5", "pids": 100},
        "reservations": {"memory": "33554432"},
    }
    cap = " (the cap; RESOURCES in the recipe dir raises it)"
    assert overlays[:5] == [
        f"service app: limit memory 1073741824000 lowered to 1G{cap}",
        f"service app: limit cpus 1.5 lowered to 1{cap}",
        f"service app: limit pids 4000000 lowered to 1024{cap}",
        f"service app: reservation memory 12884901888 lowered to 1G{cap}",
        f"service app: reservation cpus 1.5 lowered to 1{cap}",
    ]
    raised, overlays = _greedy(plan, tmp_path, {"memory": "2000G", "cpus": "2", "pids": "5000000"})
    assert raised["services"]["app"]["deploy"]["resources"]["limits"] == {
        "memory": "1073741824000",
        "cpus": "1.5",
        "pids": 4000000,
    }
    assert not [line for line in overlays if "lowered" in line]


def test_every_container_log_is_bounded(plan: Plan, tmp_path: Path) -> None:
    config, overlays = _greedy(plan, tmp_path, {})
    assert config["services"]["app"]["logging"] == {  # the recipe's own options capped
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "3"},
    }
    assert config["services"]["small"]["logging"] == {  # less is kept
        "driver": "json-file",
        "options": {"max-size": "1m", "max-file": "2"},
    }
    assert "all services: json-file logs of at most max-size 10m, max-file 3" in overlays


@pytest.mark.parametrize(("name", "value"), [("memory", "lots"), ("cpus", "1c"), ("pids", "-1")])
def test_a_malformed_resource_is_named(name: str, value: str) -> None:
    with pytest.raises(MetaError, match=rf"RESOURCES\['{name}'\] = '{value}' is not a {name}"):
        limits({name: value})


def test_the_limits_deploy_on_docker_as_written(plan: Plan, tmp_path: Path) -> None:
    config, _ = deploy_config(plan, Platform("local", ipvs=False), "r", STAMP, 40123)
    (tmp_path / "deploy.yml").write_text(render_deploy_file(config))
    merged = stack_config(resolve(tmp_path, ("deploy.yml",), {}).texts)
    assert merged["services"]["app"]["deploy"]["resources"]["limits"] == {
        "cpus": "1",
        "memory": str(memory_bytes("1G")),
        "pids": 1024,
    }
    assert merged["services"]["app"]["logging"] == {
        "driver": "json-file",
        "options": {"max-size": "10m", "max-file": "3"},
    }


def test_every_service_joins_the_dependencies_networks_as_they_are(plan: Plan) -> None:
    config = {**plan.config, "services": {**plan.config["services"], "init": {"image": "x"}}}
    with_init = Plan(**{**plan.__dict__, "config": config})
    joined, overlays = deploy_config(
        with_init,
        Platform("local", ipvs=False),
        "run42",
        STAMP,
        40123,
        attach=["idp-ab12cdd0_localhost_proxy"],
    )
    network = joined["networks"]["ccci_dependency_0"]
    assert network == {"external": True, "name": "idp-ab12cdd0_localhost_proxy"}  # not ours
    assert "ccci_dependency_0" in joined["services"]["app"]["networks"]
    # A service that had no networks keeps the stack's default one, and joins too.
    assert joined["services"]["init"]["networks"] == ["default", "ccci_dependency_0"]
    assert "all services: join dependency network idp-ab12cdd0_localhost_proxy" in overlays


@pytest.fixture
def engine_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A clean engine setting for detect(): what the test sets is all there is."""
    from harness.swarm import engine

    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "CCCI_DOMAIN", "CCCI_PROXY", "CCCI_IPVS"):
        monkeypatch.delenv(name, raising=False)
    engine._context.cache_clear()
    yield monkeypatch
    engine._context.cache_clear()


def test_a_remote_engine_needs_the_domain_its_proxy_serves(engine_env: pytest.MonkeyPatch) -> None:
    from harness.errors import PlatformError
    from harness.lifecycle.platform import detect

    engine_env.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    with pytest.raises(PlatformError, match="set CCCI_DOMAIN"):
        detect()
    engine_env.setenv("CCCI_DOMAIN", "ci.example.org")
    assert detect() == Platform("remote", ipvs=True, domain="ci.example.org", proxy=None)
    engine_env.setenv("CCCI_PROXY", "10.0.0.5")
    engine_env.setenv("CCCI_IPVS", "no")
    remote = detect()
    assert (remote.proxy, remote.ipvs) == ("10.0.0.5", False)
    assert remote.base_url("app-x.ci.example.org", None) == "https://app-x.ci.example.org"
    engine_env.setenv("CCCI_IPVS", "maybe")
    with pytest.raises(PlatformError, match="CCCI_IPVS='maybe'"):
        detect()


def test_a_docker_context_that_does_not_exist_is_named(engine_env: pytest.MonkeyPatch) -> None:
    from harness.errors import PlatformError
    from harness.lifecycle.platform import detect

    engine_env.setenv("DOCKER_CONTEXT", "nowhere")
    with pytest.raises(PlatformError, match="nowhere"):
        detect()


def test_an_app_client_dials_the_proxy_with_the_apps_name() -> None:
    from harness.lifecycle.platform import app_client

    with app_client("https://app.ci.example.org", "app.ci.example.org", "10.0.0.5") as http:
        request = http.build_request("GET", "/health")
        assert str(request.url) == "https://10.0.0.5/health"
        assert request.headers["host"] == "app.ci.example.org"
    with app_client("http://127.0.0.1:4000", "app.localhost", None) as http:
        assert str(http.build_request("GET", "/").url) == "http://127.0.0.1:4000/"


def test_sessions_starting_together_agree_on_one_host_id(tmp_path: Path) -> None:
    """The id is made on first use, maybe by several xdist workers at once: they must all
    label with the same one, or this host's janitor would take their runs for another
    host's and never sweep them."""
    from harness.files import read_or_make

    path = tmp_path / "host-id"
    start = threading.Barrier(8)
    found: list[str] = []

    def one() -> None:
        start.wait()
        found.append(read_or_make(path, lambda: secrets.token_hex(4)))

    for _ in range(20):
        path.unlink(missing_ok=True)
        found.clear()
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(found)) == 1, found
        assert found[0]
        assert path.read_text().strip() == found[0]
