"""The app env: .env.sample parsing, modifiers, abra.sh exports, COMPOSE_FILE expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import PlanError
from harness.recipe.appenv import abra_exports, app_env, parse_env

REAL = Path(__file__).resolve().parents[1] / "data" / "real-recipes"  # copies of shared/


def test_parse_env_values_quotes_comments_and_modifiers() -> None:
    parsed = parse_env(
        "TYPE=demo\n"
        "# COMMENTED=1\n"
        'COMPOSE_FILE="compose.yml:compose.smtp.yml"\n'
        "export PLAIN=value # a comment\n"
        "EMPTY=\n"
        "SECRET_DB_PASSWORD_VERSION=v1 # length=48 charset=hex\n"
        "SECRET_API_KEY_VERSION=v2  # generate=false\n"
        "EXTRA_DOMAINS=', `www.example.com`'\n"
    )
    assert parsed.values == {
        "TYPE": "demo",
        "COMPOSE_FILE": "compose.yml:compose.smtp.yml",
        "PLAIN": "value",
        "EMPTY": "",
        "SECRET_DB_PASSWORD_VERSION": "v1",
        "SECRET_API_KEY_VERSION": "v2",
        "EXTRA_DOMAINS": ", `www.example.com`",
    }
    assert parsed.modifiers == {
        "SECRET_DB_PASSWORD_VERSION": {"length": "48", "charset": "hex"},
        "SECRET_API_KEY_VERSION": {"generate": "false"},
    }


def test_abra_sh_is_read_not_executed() -> None:
    # custom-php-2021's abra.sh also defines legacy abra_backup_* functions.
    exports = abra_exports(REAL / "custom-php-2021" / "abra.sh")
    assert exports == {
        "NGINX_DEFAULT_CONF_VERSION": "v6",
        "PHP_UPLOADS_CONF_VERSION": "v3",
        "ENTRYPOINT_CONF_VERSION": "v2",
        "ENTRYPOINT_MAILRELAY_CONF_VERSION": "v1",
        "MSMTP_CONF_VERSION": "v3",
    }


def test_app_env_identity_extra_env_and_incremental_compose_file(tmp_path: Path) -> None:
    (tmp_path / ".env.sample").write_text(
        "TYPE=custom-php\nDOMAIN=example.com\nLETS_ENCRYPT_ENV=production\n"
    )
    (tmp_path / "abra.sh").write_text("export APP_CONF_VERSION=v3\nabra_backup() { :; }\n")
    env, _ = app_env(
        "php",
        tmp_path,
        "php-1.localhost",
        "php-1_localhost",
        {"COMPOSE_FILE": "$COMPOSE_FILE:compose.smtp.yml", "SMTP_HOST": "mail"},
    )
    assert next(iter(env)) == "TYPE"
    assert env["TYPE"] == "php"  # the recipe's name, whatever the sample says
    assert env["DOMAIN"] == "php-1.localhost"
    assert env["STACK_NAME"] == "php-1_localhost"
    assert env["LETS_ENCRYPT_ENV"] == ""
    assert env["COMPOSE_FILE"] == "compose.yml:compose.smtp.yml"
    assert env["SMTP_HOST"] == "mail"
    assert env["APP_CONF_VERSION"] == "v3"


def test_env_forms_read_as_abra_reads_them() -> None:
    parsed = parse_env(
        'COMPOSE_FILE="compose.yml"\n'
        'COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"\n'  # later lines see earlier ones
        "export BRACED=${COMPOSE_FILE}:x.yml\n"
        "SINGLE='$COMPOSE_FILE stays # as is'\n"  # single quotes: literal
        'ESCAPED="a \\$HOME, a \\"quote\\", a\\nnewline"\n'
        "DEFAULTED=${UNSET:-fallback}\n"
        "EMPTY=\n"
        "DEFAULT_IF_EMPTY=${EMPTY:-used}\n"
        "DEFAULT_IF_UNSET=${EMPTY-unused}\n"
        "NESTED=${UNSET:-$DEFAULTED/x}\n"
        "URL=https://$DOMAIN/path # a comment, $DOMAIN not in it\n"
        "SECRET_X_VERSION=v1 # length=12 charset=hex\n"
        'SECRET_Y_VERSION="v2" # generate=false\n',
        outer={"DOMAIN": "app.example"},
    )
    assert parsed.values == {
        "COMPOSE_FILE": "compose.yml:compose.postgres.yml",
        "BRACED": "compose.yml:compose.postgres.yml:x.yml",
        "SINGLE": "$COMPOSE_FILE stays # as is",
        "ESCAPED": 'a $HOME, a "quote", a\nnewline',
        "DEFAULTED": "fallback",
        "EMPTY": "",
        "DEFAULT_IF_EMPTY": "used",
        "DEFAULT_IF_UNSET": "",
        "NESTED": "fallback/x",
        "URL": "https://app.example/path",
        "SECRET_X_VERSION": "v1",
        "SECRET_Y_VERSION": "v2",
    }
    assert parsed.modifiers == {
        "SECRET_X_VERSION": {"length": "12", "charset": "hex"},
        "SECRET_Y_VERSION": {"generate": "false"},
    }


def test_the_host_environment_is_never_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCCI_FORGE_TOKEN", "do-not-leak")
    assert parse_env("LEAK=$CCCI_FORGE_TOKEN\n").values == {"LEAK": ""}


def test_an_unterminated_quote_names_its_line() -> None:
    with pytest.raises(PlanError, match=r"^\.env\.sample:2: B: unterminated quoted value$"):
        parse_env('A=1\nB="open\n')


def test_the_apps_domain_replaces_the_samples_for_the_lines_below(tmp_path: Path) -> None:
    (tmp_path / ".env.sample").write_text(
        "TYPE=x\nDOMAIN=x.example.com\nURL=https://${DOMAIN}/\nCOMPOSE_FILE=compose.yml\n"
        'COMPOSE_FILE="$COMPOSE_FILE:compose.db.yml"\n'
    )
    env, _ = app_env(
        "x",
        tmp_path,
        "x-1.localhost",
        "x-1_localhost",
        {"COMPOSE_FILE": "${COMPOSE_FILE}:compose.smtp.yml"},
    )
    assert env["URL"] == "https://x-1.localhost/"
    assert env["COMPOSE_FILE"] == "compose.yml:compose.db.yml:compose.smtp.yml"


def test_the_identity_is_the_samples_type_else_the_directory_fit_for_swarm_names(
    tmp_path: Path,
) -> None:
    from harness.recipe.appenv import identity

    (tmp_path / ".env.sample").write_text("TYPE=custom-php\n")
    assert identity("owner+custom-php", tmp_path) == ("custom-php", "TYPE in .env.sample")
    (tmp_path / ".env.sample").write_text("RECIPE=lasuite-docs\nTYPE=old\n")
    assert identity("x", tmp_path) == ("lasuite-docs", "RECIPE in .env.sample")
    (tmp_path / ".env.sample").write_text("DOMAIN=x.example.com\n")
    assert identity("Owner+My_Recipe", tmp_path) == (
        "owner-my-recipe",
        "the directory name 'Owner+My_Recipe', made fit for swarm names",
    )
    (tmp_path / ".env.sample").write_text('TYPE="broken\n')
    assert identity("ok", tmp_path) == ("ok", "the directory name")  # the plan says why
