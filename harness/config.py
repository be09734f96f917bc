"""Every setting of cc-ci, resolved in one place, and where each value came from.

A setting is ``--<name>`` on a command line, ``CCCI_<NAME>`` in the environment,
``ccci_<name>`` in the ini file pytest reads (``pytest.ini``, ``pyproject.toml``, …), else
its default — in that order, for every face of cc-ci (a pytest session, ``cc-ci run``,
``serve``, ``watch``, ``job``, the platform's detection). ``resolve`` gives each value with
its source; ``cc-ci config`` prints them as a table. A secret (a token) is read from the
environment only and never printed. Defaults live here once.

Pure: the environment and the ini values in, values out; it imports nothing of cc-ci but
its errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_CATALOGUE",
    "DEFAULT_JANITOR_AGE",
    "DEFAULT_RUN_DEADLINE",
    "FACES",
    "SETTINGS",
    "Setting",
    "Value",
    "cache_dir",
    "resolve",
    "table",
]


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """cc-ci's cache (mirrors, leases, the host id, the demo catalogue):
    ``$XDG_CACHE_HOME/cc-ci``, else ``~/.cache/cc-ci``."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cc-ci"


DEFAULT_CATALOGUE = str(cache_dir() / "demo-catalogue")  # built by scripts/setup
DEFAULT_RUN_DEADLINE = 3600.0  # seconds a recipe's run may take, every wait included
DEFAULT_JANITOR_AGE = 60.0  # seconds after which a dead run's resources are swept


@dataclass(frozen=True)
class Setting:
    name: str  # as on the command line, without its dashes: run-deadline
    help: str
    default: str | None = None
    secret: bool = False  # from the environment only, never shown

    @property
    def env(self) -> str:
        return f"CCCI_{self.name.upper().replace('-', '_')}"

    @property
    def ini(self) -> str:
        return f"ccci_{self.name.replace('-', '_')}"


def _settings(*settings: Setting) -> dict[str, Setting]:
    return {s.name: s for s in settings}


SETTINGS = _settings(
    # a recipe's run: the pytest session and `cc-ci run`
    Setting(
        "catalogue",
        "where recipes are fetched from: a URL prefix or a directory of recipe repos"
        " (default: the demo catalogue built by scripts/setup)",
        DEFAULT_CATALOGUE,
    ),
    Setting(
        "ref", "the candidate: a tag, branch, commit or pull/<n> (default: the default branch)"
    ),
    Setting(
        "tiers",
        "comma-separated tiers to run: install, upgrade, backup, restore, custom"
        " (default: every one the recipe dir's TIERS names)",
    ),
    Setting(
        "upgrade-from",
        "the release tag the upgrade tier starts from (default: the recipe dir's"
        " UPGRADE_FROM, else the release before the candidate)",
    ),
    Setting(
        "pull",
        "when images are pulled: missing (default), always (but images built here), never",
    ),
    Setting(
        "runs-dir",
        "where run dirs are written (default: runs/ beside the ini file, else in the working"
        " directory)",
    ),
    Setting(
        "run-deadline",
        "seconds a recipe's run may take, every wait included"
        f" (default: {DEFAULT_RUN_DEADLINE:.0f})",
        f"{DEFAULT_RUN_DEADLINE:.0f}",
    ),
    Setting(
        "janitor-age",
        "seconds after which resources of dead runs are swept"
        f" (default: {DEFAULT_JANITOR_AGE:.0f})",
        f"{DEFAULT_JANITOR_AGE:.0f}",
    ),
    # the platform apps run on
    Setting("ipvs", "whether swarm routes VIPs: yes or no (default: as this kernel has it)"),
    Setting("domain", "a remote swarm's wildcard domain its proxy serves apps under"),
    Setting("proxy", "where a remote swarm's proxy answers, host:port (default: the domain's DNS)"),
    # cc-ci serve
    Setting("forge-url", "the Gitea/Forgejo the PRs are on"),
    Setting("forge-token", "the forge token of the bot", secret=True),
    Setting("webhook-secret", "the webhooks' shared secret", secret=True),
    Setting("listen", "HOST:PORT to serve on", "127.0.0.1:8088"),
    Setting("public-url", "the URL the service is reached at (default: http://<listen>)"),
    Setting("state-dir", "the durable job queue and the PR heads' catalogue", "state"),
    Setting("parallel", "jobs run at once", "1"),
    Setting("repos", "OWNER/NAME of the repos served, whose recipe dirs apply (words)"),
    Setting("orgs", "owners whose repos' recipe dirs apply (words)"),
    Setting("poll", "seconds between reads of new comments (default: off: webhooks)"),
    Setting("dispatch", "run jobs as pipelines of this CI engine: woodpecker or drone"),
    Setting("ci-url", "the CI engine's URL"),
    Setting("ci-repo", "OWNER/NAME of the repo whose pipeline runs jobs"),
    Setting("ci-branch", "the branch of that pipeline", "main"),
    # cc-ci watch
    Setting("ci-engine", "the CI engine followed: woodpecker or drone"),
    Setting("ci-token", "the CI engine's token", secret=True),
)

# Which settings each face of cc-ci reads.
FACES: Mapping[str, tuple[str, ...]] = {
    "run": (
        "catalogue",
        "ref",
        "tiers",
        "upgrade-from",
        "pull",
        "runs-dir",
        "run-deadline",
        "janitor-age",
    ),
    "platform": ("ipvs", "domain", "proxy"),
    "serve": (
        "forge-url",
        "forge-token",
        "webhook-secret",
        "listen",
        "public-url",
        "state-dir",
        "runs-dir",
        "parallel",
        "repos",
        "orgs",
        "poll",
        "run-deadline",
        "janitor-age",
        "dispatch",
        "ci-url",
        "ci-repo",
        "ci-branch",
        "ci-token",
    ),
    "watch": ("ci-engine", "ci-url", "ci-token"),
}


@dataclass(frozen=True)
class Value:
    value: str | None
    source: str  # "--run-deadline", "CCCI_RUN_DEADLINE", "ini ccci_run_deadline", "default"


def resolve(
    names: Sequence[str],
    flags: Mapping[str, object] | None = None,
    ini: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, Value]:
    """Each setting of ``names``: the flag (``flags`` by name, ``None`` when not given),
    else its ``CCCI_*`` variable, else its ``ccci_*`` ini key, else its default."""
    flags, ini = flags or {}, ini or {}
    found: dict[str, Value] = {}
    for name in names:
        setting = SETTINGS[name]
        given = None if setting.secret else flags.get(name)
        if given is not None and given != [] and given != "":
            text = " ".join(map(str, given)) if isinstance(given, list | tuple) else str(given)
            found[name] = Value(text, f"--{name}")
        elif environ.get(setting.env):
            found[name] = Value(environ[setting.env], setting.env)
        elif not setting.secret and ini.get(setting.ini):
            found[name] = Value(ini[setting.ini], f"ini {setting.ini}")
        else:
            found[name] = Value(setting.default, "default")
    return found


def table(values: Mapping[str, Value]) -> str:
    """The settings as a maintainer reads them: name, value (a secret only as set or
    not), and where the value came from."""
    rows = []
    for name, found in values.items():
        shown = found.value if found.value is not None else "(none)"
        if SETTINGS[name].secret:
            shown = "(set)" if found.value else "(not set)"
        rows.append(f"{name:16} {shown:40} {found.source}")
    return "\n".join(rows)
