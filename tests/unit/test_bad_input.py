"""Bad input, row by row as docs/bad-input.md lists it: each a one-line cause, raised
before anything is created (planning and fetching come before every deploy)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import fetch
from harness.errors import CatalogueError, PlanError
from harness.lifecycle.planning import plan_app
from harness.recipe.appenv import app_env

GOOD = """\
version: "3.8"
services:
  app:
    image: cc-ci/busybox:bookworm
    deploy:
      labels: ["coop-cloud.${STACK_NAME}.version=1.0.0+1"]
"""


def plan(checkout: Path, stack: str = "t_localhost") -> None:
    env, sample = app_env("t", checkout, "t.localhost", stack, {})
    plan_app("t", checkout, env, sample)


def write(tmp_path: Path, compose: str, sample: str | bytes | None = "TYPE=t\n") -> Path:
    (tmp_path / "compose.yml").write_text(textwrap.dedent(compose))
    if isinstance(sample, bytes):
        (tmp_path / ".env.sample").write_bytes(sample)
    elif sample is not None:
        (tmp_path / ".env.sample").write_text(sample)
    return tmp_path


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


def test_no_env_sample(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as exc:
        plan(write(tmp_path, GOOD, sample=None))
    assert one_line(exc) == "t: no .env.sample in the recipe (abra builds every app's env from it)"


def test_binary_junk_in_env_sample(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as exc:
        plan(write(tmp_path, GOOD, sample=b"TYPE=t\n\xff\xfe\x00junk\n"))
    assert one_line(exc) == ".env.sample: not UTF-8 text at byte 7: b'\\xff\\xfe\\x00j'"


def test_malformed_compose_yaml_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as exc:
        plan(write(tmp_path, GOOD + "  db: [unclosed\n"))
    assert one_line(exc).startswith("compose.yml:8: bad YAML: ")


def test_undefined_config(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as exc:
        plan(write(tmp_path, GOOD.replace("    deploy:", "    configs: [nginx_conf]\n    deploy:")))
    assert one_line(exc) == "service app uses config nginx_conf, which is not defined"


def test_a_stack_name_overflow_names_the_swarm_name(tmp_path: Path) -> None:
    key = "a_rather_long_secret_name_for_the_db"
    compose = GOOD.replace("    deploy:", f"    secrets: [{key}]\n    deploy:") + (
        f"secrets:\n  {key}:\n    external: true\n"
        f"    name: ${{STACK_NAME}}_{key}_${{SECRET_X_VERSION}}\n"
    )
    stack = "radicale-abc123i0_localhost"
    with pytest.raises(PlanError) as exc:
        plan(write(tmp_path, compose, "TYPE=t\nSECRET_X_VERSION=v1\n"), stack=stack)
    name = f"{stack}_{key}_v1"
    assert one_line(exc) == (
        f"secret name {name} is {len(name)} characters, over swarm's 64"
        f" (the stack {stack} takes {len(stack) + 1}: shorten the secret's own part)"
    )


def test_an_unreachable_catalogue_url(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as exc:
        fetch.mirror("radicale", "http://127.0.0.1:9/coop-cloud", cache_dir=tmp_path)
    assert one_line(exc).startswith("git clone --quiet --mirror http://127.0.0.1:9/coop-cloud/")
    assert "Failed to connect to 127.0.0.1 port 9" in one_line(exc)
