"""cc-ci's plan of real and broken recipes: what a maintainer expects it to say."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from harness.errors import PlanError
from harness.lifecycle.planning import plan_app
from harness.recipe.appenv import app_env
from harness.recipe.plan import Plan, compose_files, make_plan, resolve

REAL = Path(__file__).resolve().parents[1] / "data" / "real-recipes"  # copies of shared/


def plan_of(checkout: Path, **extra: str) -> Plan:
    env, sample = app_env(checkout.name, checkout, "t.localhost", "t_localhost", extra)
    return plan_app(checkout.name, checkout, env, sample)


def test_gaseous_plans_with_a_warning_for_the_unset_variable() -> None:
    plan = plan_of(REAL / "gaseous")
    assert plan.images == {"app": "gaseousgames/gaseousserver:latest", "db": "mariadb"}
    assert plan.web == ("app", 80)
    assert plan.volumes == ("gs", "gsdb")
    assert plan.version_label == "0.1.0+4.3.1"
    assert plan.warnings == ("variable EXTRA_DOMAINS is not set (compose.yml); it becomes blank",)


def test_custom_php_names_every_missing_config_file() -> None:
    with pytest.raises(PlanError) as caught:
        plan_of(REAL / "custom-php-2021")
    assert str(caught.value).splitlines() == [
        "config entrypoint_conf: file entrypoint.sh.tmpl does not exist in the recipe",
        "config nginx_default_conf: file nginx.conf does not exist in the recipe",
        "config php_uploads_conf: file uploads.ini does not exist in the recipe",
    ]


def test_traefik_ovh_secret_without_version_suffix(tmp_path: Path) -> None:
    checkout = tmp_path / "traefik"
    shutil.copytree(REAL / "traefik-2021", checkout)
    for name in ("entrypoint.sh.tmpl", "file-provider.yml.tmpl", "traefik.yml.tmpl"):
        (checkout / name).write_text("# template\n")
    plan = plan_of(checkout)  # the default compose.yml is fine once its templates exist
    assert plan.web is None  # its port is the named entrypoint "web", not a number
    assert "traefik port 'web' is not a number" in plan.warnings[0]
    with pytest.raises(PlanError) as caught:
        plan_of(checkout, COMPOSE_FILE="compose.yml:compose.ovh.yml")
    lines = str(caught.value).splitlines()
    assert any(
        "secret ovh_app_secret" in line and "SECRET_OVH_APP_SECRET_VERSION" in line
        for line in lines
    )
    assert any(
        "secret ovh_consumer_key" in line
        and "the convention is SECRET_OVH_CONSUMER_KEY_VERSION" in line
        for line in lines
    )
    plan = plan_of(
        checkout,
        COMPOSE_FILE="compose.yml:compose.ovh.yml",
        SECRET_OVH_APP_SECRET_VERSION="v1",
        SECRET_OVH_CONSUMER_KEY="v1",
    )
    assert [s.name for s in plan.secrets] == [
        "t_localhost_ovh_app_secret_v1",
        "t_localhost_ovh_consumer_key_v1",
    ]


GOOD = """\
    version: "3.8"
    services:
      app:
        image: cc-ci/busybox:bookworm
        secrets: [db_password]
        deploy:
          labels:
            - "traefik.enable=true"
            - "traefik.http.services.${STACK_NAME}.loadbalancer.server.port=8080"
            - "coop-cloud.${STACK_NAME}.version=1.0.0+1"
            - "coop-cloud.${STACK_NAME}.timeout=${TIMEOUT:-90}"
            - "backupbot.backup=true"
    secrets:
      db_password:
        external: true
        name: ${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}
"""


def recipe(tmp_path: Path, compose: str, sample: str) -> Path:
    (tmp_path / "compose.yml").write_text(textwrap.dedent(compose))
    (tmp_path / ".env.sample").write_text(sample)
    return tmp_path


def test_good_recipe_plan(tmp_path: Path) -> None:
    plan = plan_of(
        recipe(tmp_path, GOOD, "SECRET_DB_PASSWORD_VERSION=v2 # length=12 charset=hex\n")
    )
    assert plan.web == ("app", 8080)
    assert plan.timeout == 90
    assert plan.backup == {"app": {"backupbot.backup": "true"}}
    (secret,) = plan.secrets
    assert (secret.name, secret.length, secret.charset, secret.generate) == (
        "t_localhost_db_password_v2",
        12,
        "hex",
        True,
    )
    assert "db_password: t_localhost_db_password_v2" in plan.describe()


def test_the_plan_is_made_from_the_merged_config_it_is_given(tmp_path: Path) -> None:
    """make_plan runs nothing (recipe/ is pure): it plans from the merged config handed to
    it, as the caller had ``docker stack config`` make it, never from a merge of its own."""
    checkout = recipe(tmp_path, GOOD, "SECRET_DB_PASSWORD_VERSION=v2\n")
    env, sample = app_env("t", checkout, "t.localhost", "t_localhost", {})
    resolved = resolve(checkout, compose_files(env), env)
    labels = {
        "traefik.enable": "true",
        "traefik.http.services.t.loadbalancer.server.port": "9090",
        "coop-cloud.t_localhost.version": "2.0.0+2",
    }
    config = {"services": {"app": {"image": "given:1", "deploy": {"labels": labels}}}}
    plan = make_plan("t", checkout, env, sample, resolved, config)
    assert plan.config is config
    assert plan.compose_files == ("compose.yml",)
    assert plan.images == {"app": "given:1"}  # not the compose file's cc-ci/busybox
    assert plan.web == ("app", 9090)
    assert plan.version_label == "2.0.0+2"
    assert plan.secrets == ()  # the given config defines none
    assert plan.backup == {}


@pytest.mark.parametrize(
    ("compose", "sample", "message"),
    [
        pytest.param(
            "version: '3.8'\nservices:\n  app:\n   image: x\n  bad: [\n",
            "",
            r"^compose.yml:\d+: bad YAML: ",
            id="bad-yaml",
        ),
        pytest.param(
            GOOD.replace("secrets: [db_password]", "secrets: [db_password, api_key]"),
            "SECRET_DB_PASSWORD_VERSION=v1\n",
            r"^service app uses secret api_key, which is not defined$",
            id="undefined",
        ),
        pytest.param(
            GOOD, "", r"needs \$SECRET_DB_PASSWORD_VERSION, which is not set", id="no-version"
        ),
        pytest.param(
            GOOD.replace("image: cc-ci/busybox:bookworm", "command: [sh]"),
            "SECRET_DB_PASSWORD_VERSION=v1\n",
            r"^service app has no image$",
            id="no-image",
        ),
        pytest.param(
            GOOD,
            "SECRET_DB_PASSWORD_VERSION=v1\nCOMPOSE_FILE=compose.yml:compose.x.yml\n",
            r"COMPOSE_FILE names compose.x.yml, which does not exist",
            id="no-file",
        ),
        pytest.param(
            GOOD,
            "SECRET_DB_PASSWORD_VERSION=v1 # length=many\n",
            r"length='many' is not a number",
            id="bad-modifier",
        ),
    ],
)
def test_each_defect_is_one_clear_error(
    tmp_path: Path, compose: str, sample: str, message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        plan_of(recipe(tmp_path, compose, sample))


def test_the_version_label_is_found_on_whichever_service_carries_it(tmp_path: Path) -> None:
    on_web = """\
        version: "3.8"
        services:
          web:
            image: cc-ci/busybox:bookworm
            deploy:
              labels: ["coop-cloud.${STACK_NAME}.version=2.1.0+1.4"]
          worker:
            image: cc-ci/busybox:bookworm
        """
    plan = plan_of(recipe(tmp_path, on_web, ""))
    assert (plan.version_label, plan.version_service) == ("2.1.0+1.4", "web")
    assert plan.stamp_service == "web"  # no app service: the stamps go with the label
    assert "version label: 2.1.0+1.4 (on service web)" in plan.describe()


def test_no_version_label_says_where_it_looked(tmp_path: Path) -> None:
    unlabelled = GOOD.replace("coop-cloud.${STACK_NAME}.version", "x")
    plan = plan_of(recipe(tmp_path, unlabelled, "SECRET_DB_PASSWORD_VERSION=v1\n"))
    assert plan.version_service is None
    assert plan.stamp_service == "app"
    assert (
        "version label: (none: no service has coop-cloud.t_localhost.version; looked at app)"
        in plan.describe()
    )


def test_the_app_service_is_preferred_when_several_carry_a_version(tmp_path: Path) -> None:
    both = GOOD.replace(
        "    secrets:\n      db_password:",
        "      db:\n        image: x\n        deploy:\n          labels:\n"
        '            - "coop-cloud.${STACK_NAME}.version=9.9.9+9"\n'
        "    secrets:\n      db_password:",
    )
    plan = plan_of(recipe(tmp_path, both, "SECRET_DB_PASSWORD_VERSION=v1\n"))
    assert (plan.version_label, plan.version_service) == ("1.0.0+1", "app")


@pytest.mark.parametrize("name", ["custom-php-2021", "gaseous", "traefik-2021"])
def test_every_real_recipe_plans_and_lints_as_its_repository_holds_it(
    tmp_path: Path, name: str
) -> None:
    """The copies in shared/ leave out some files of the repository's HEAD (SOURCE.txt lists
    them); with those present, as abra sees the repository, every real recipe plans — and
    lints without an error — whatever its other defects."""
    import yaml

    from harness.fetch import tags
    from harness.recipe.lint import lint, summary

    checkout = tmp_path / name
    shutil.copytree(REAL / name, checkout)
    source = yaml.safe_load((checkout / "SOURCE.txt").read_text())
    for missing in set(source["all_files_in_HEAD"]) - set(source["copied_files"]):
        if not (checkout / missing).exists():
            (checkout / missing).write_text("")
    plan = plan_of(checkout)
    assert plan.images
    assert "version label: " in plan.describe()
    assert summary(lint(checkout, tags(checkout)))["status"] == "pass"
