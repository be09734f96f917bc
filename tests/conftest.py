"""Shared helpers of cc-ci's own suite: inner cc-ci sessions in subprocesses, on synthetic
recipes built as real git repos (the playwright-pytest way: the plugin's own suite never
collects recipes in the outer session)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.lifecycle import teardown
from harness.lifecycle.labels import RUN_LABEL
from harness.swarm import engine

pytest_plugins = ["pytester"]

WEB_APP = """\
version: "3.8"
services:
  app:
    image: cc-ci/busybox:bookworm
    command:
      - sh
      - -c
      - mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www
    networks: [proxy]
    deploy:
      labels:
        - "traefik.enable=true"
        - "traefik.http.services.${STACK_NAME}.loadbalancer.server.port=8080"
        - "coop-cloud.${STACK_NAME}.version=@VERSION@"
networks:
  proxy:
    external: true
"""

# Healthy only after 60 s: a run of it is caught mid-deploy, converging.
SLOW_APP = WEB_APP.replace(
    "    networks: [proxy]\n",
    "    networks: [proxy]\n"
    "    healthcheck:\n"
    '      test: ["CMD", "false"]\n'
    "      interval: 60s\n"
    "      start_period: 60s\n",
)

_OUTCOME = re.compile(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|XFAIL|XPASS|ERROR)\b", re.MULTILINE)


@dataclass
class Session:
    returncode: int
    output: str
    runs_dir: Path

    @property
    def outcomes(self) -> dict[str, str]:
        return dict(_OUTCOME.findall(self.output))

    @property
    def tier_outcomes(self) -> dict[str, str]:
        """The outcomes of the lifecycle tiers (the lint item aside)."""
        return {k: v for k, v in self.outcomes.items() if not k.endswith("::lint")}

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.runs_dir.glob("*/results.json"))]

    def run_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return [d.name.rsplit("-", 1)[1] for d in sorted(self.runs_dir.glob("*-*"))]

    def assert_nothing_left(self) -> None:
        ids = self.run_ids()
        assert ids, f"no run dir under {self.runs_dir}"
        client = engine.client()
        for run_id in ids:
            assert teardown.leftovers(run_id) == {}, run_id
            # Also what a label would miss: every stack of the run has the id in its name.
            for kind in ("services", "networks", "volumes", "secrets", "configs"):
                named = [o.name for o in getattr(client, kind).list() if f"-{run_id}" in o.name]
                assert named == [], f"{kind} of run {run_id} left: {named}"


class Workspace:
    """A catalogue of recipe repos, recipe dirs, and a way to run cc-ci on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.catalogue = root / "catalogue"
        self.runs_dir = root / "runs"
        (root / "pytest.ini").write_text("[pytest]\n")

    def recipe(self, name: str, releases: list[tuple[str, str]], meta: str = "") -> Path:
        """A recipe repo with one annotated tag per (tag, compose) release, and its dir."""
        repo = self.catalogue / name
        repo.mkdir(parents=True)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        (repo / ".env.sample").write_text(f"TYPE={name}\nDOMAIN={name}.example.com\n")
        for tag, compose in releases:
            version = tag if tag[0].isdigit() else "0.0.0+0"
            (repo / "compose.yml").write_text(compose.replace("@VERSION@", version))
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-q", "-m", tag], check=True)
            annotated = ["-a", "-m", tag] if tag[0].isdigit() else []
            subprocess.run([*git, "tag", *annotated, tag], check=True)
        recipe_dir = self.root / "recipes" / name
        recipe_dir.mkdir(parents=True)
        (recipe_dir / "recipe_meta.py").write_text(textwrap.dedent(meta))
        return recipe_dir

    def argv(self, *args: str, catalogue: str | None = None) -> list[str]:
        """An inner cc-ci session on this workspace's catalogue (or ``catalogue``)."""
        return [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--catalogue",
            catalogue or str(self.catalogue),
            "--runs-dir",
            str(self.runs_dir),
            *args,
        ]

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_deployed(self, inner: subprocess.Popen[str], timeout: float = 60) -> str:
        """The id of the run ``inner`` started, once it has a service on the swarm."""
        client = engine.client()
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, "the run never deployed"
            assert inner.poll() is None, inner.communicate()[0]
            for run_id in Session(0, "", self.runs_dir).run_ids():
                if client.services.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
                    return run_id
            time.sleep(0.2)

    def pytest(self, *args: str, timeout: float = 600) -> Session:
        done = subprocess.run(
            self.argv(*args), cwd=self.root, capture_output=True, text=True, timeout=timeout
        )
        return Session(done.returncode, done.stdout + done.stderr, self.runs_dir)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)
