"""The app env: .env.sample parsing, modifiers, abra.sh exports, COMPOSE_FILE expansion."""

from __future__ import annotations

from pathlib import Path

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
