"""The REST APIs of the CI engines cc-ci hands runs to, as it uses them, and nothing more.

Woodpecker (``/api``, bearer token): ``GET /repos/lookup/{owner}/{name}`` for the repo's
id, ``GET /repos/{id}/pipelines`` and ``GET /repos/{id}/pipelines/{number}``,
``POST /repos/{id}/pipelines`` (a manual pipeline with variables).
Drone (``/api``, bearer token): ``GET /repos/{owner}/{name}``, ``GET …/builds`` and
``GET …/builds/{number}``, ``POST …/builds?branch=…&KEY=VALUE`` (a custom build with
parameters).

Both answer with their own shapes; each becomes a ``Pipeline`` here. A read is retried
while the engine answers 5xx, 204, an empty body or not at all (list endpoints of both do
that under load); a trigger is never retried, since a lost answer may still have made a
pipeline — the caller looks for it by its marker variable instead. The token is sent in
the ``Authorization`` header only, and no message here carries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from harness.deadline import Deadline, poll
from harness.errors import InfraError

__all__ = [
    "ENGINES",
    "Api",
    "CannotWatch",
    "Drone",
    "Pipeline",
    "PipelineOutcome",
    "Woodpecker",
    "connect",
]

PipelineOutcome = Literal["running", "success", "failure"]
RUNNING: PipelineOutcome = "running"
SUCCESS: PipelineOutcome = "success"
FAILURE: PipelineOutcome = "failure"


class CannotWatch(InfraError):
    """The engine cannot be followed: auth refused, no such repo, or it did not answer."""


@dataclass(frozen=True)
class Pipeline:
    number: int
    commit: str
    status: str  # the engine's own word (pending, running, success, killed, …)
    outcome: PipelineOutcome
    steps: tuple[str, ...] = ()  # the steps running now
    url: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


class Api:
    """What both engines share: the HTTP client, the retrying read, the trigger, and
    reading a pipeline's body by the engine's field names."""

    engine = ""
    FIELDS: tuple[str, str, str, str, str] = ("", "", "", "", "")
    OPEN: frozenset[str] = frozenset()  # the engine's words for a pipeline not ended
    URL = ""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=f"{self.url}/api",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def read(self, path: str, deadline: Deadline, **params: str | int) -> Any:
        """``GET path`` as JSON, retried with backoff until ``deadline`` while the answer is
        5xx, 204, empty or missing. 401/403 and 404 end it at once."""

        def answered() -> tuple[bool, object]:
            try:
                answer = self._http.get(path, params=params or None)
            except httpx.HTTPError as exc:
                return False, type(exc).__name__
            if answer.status_code in (401, 403):
                raise CannotWatch(
                    f"{self.engine}: GET {path}: HTTP {answer.status_code}"
                    " (is CCCI_CI_TOKEN a valid token with access to the repo?)"
                )
            if answer.status_code == 404:
                raise CannotWatch(f"{self.engine}: GET {path}: not found (HTTP 404)")
            if answer.status_code != 200 or not answer.content.strip():
                empty = ", empty" if answer.status_code == 200 else ""
                return False, f"HTTP {answer.status_code}{empty}"
            try:
                return True, answer.json()
            except ValueError:
                return False, "an answer that is not JSON"

        done, got = poll(answered, deadline, first=0.25, most=5.0, wake=self._sleep)
        if not done:
            raise CannotWatch(f"{self.engine}: GET {path}: still {got} at the deadline")
        return got

    def trigger(
        self, path: str, *, json: object = None, params: Mapping[str, str] | None = None
    ) -> object:
        """One POST, never repeated; its JSON, or ``None`` when the outcome is unknown (no
        answer, or a 5xx: the pipeline may exist all the same)."""
        try:
            answer = self._http.post(path, json=json, params=params)
        except httpx.HTTPError:
            return None
        if answer.status_code >= 500:
            return None
        if not answer.is_success:
            raise CannotWatch(f"{self.engine}: POST {path}: HTTP {answer.status_code}")
        try:
            return answer.json()
        except ValueError:
            return None

    def _pipeline(self, repo: Any, data: Mapping[str, Any]) -> Pipeline:
        """A ``Pipeline`` of the engine's own body for one (its names in ``FIELDS``)."""
        commit, groups, steps, state, variables = self.FIELDS
        status = str(data.get("status", ""))
        running = [
            str(step.get("name"))
            for group in data.get(groups) or []
            for step in group.get(steps) or []
            if step.get(state) == "running"
        ]
        number = int(data["number"])
        return Pipeline(
            number=number,
            commit=str(data.get(commit, "")),
            status=status,
            outcome=RUNNING
            if status in self.OPEN or not status
            else (SUCCESS if status == "success" else FAILURE),
            steps=tuple(running),
            url=self.URL.format(url=self.url, repo=repo, number=number),
            variables={str(k): str(v) for k, v in (data.get(variables) or {}).items()},
        )

    # -- per engine ------------------------------------------------------------------------

    def repo(self, full_name: str, deadline: Deadline) -> Any:
        raise NotImplementedError

    def pipelines(self, repo: Any, deadline: Deadline) -> list[Pipeline]:
        raise NotImplementedError

    def pipeline(self, repo: Any, number: int, deadline: Deadline) -> Pipeline:
        raise NotImplementedError

    def start(self, repo: Any, branch: str, variables: Mapping[str, str]) -> Pipeline | None:
        raise NotImplementedError


class Woodpecker(Api):
    engine = "woodpecker"
    # model.Pipeline: commit, workflows[].children[].state, variables; const.go's states
    FIELDS = ("commit", "workflows", "children", "state", "variables")
    OPEN = frozenset({"created", "pending", "running", "blocked"})
    URL = "{url}/repos/{repo}/pipeline/{number}"

    def repo(self, full_name: str, deadline: Deadline) -> int:
        """The repo's id (``GET /repos/lookup/{owner}/{name}``)."""
        return int(self.read(f"/repos/lookup/{_path(full_name)}", deadline)["id"])

    def pipelines(self, repo: int, deadline: Deadline) -> list[Pipeline]:
        answer = self.read(f"/repos/{repo}/pipelines", deadline, page=1, perPage=50)
        return [self._pipeline(repo, p) for p in answer or []]

    def pipeline(self, repo: int, number: int, deadline: Deadline) -> Pipeline:
        return self._pipeline(repo, self.read(f"/repos/{repo}/pipelines/{number}", deadline))

    def start(self, repo: int, branch: str, variables: Mapping[str, str]) -> Pipeline | None:
        body = {"branch": branch, "variables": dict(variables)}
        answer = self.trigger(f"/repos/{repo}/pipelines", json=body)
        return self._pipeline(repo, answer) if isinstance(answer, dict) else None


class Drone(Api):
    engine = "drone"
    # core.Build: after, stages[].steps[].status, params; core/status.go's states
    FIELDS = ("after", "stages", "steps", "status", "params")
    OPEN = frozenset({"pending", "running", "blocked", "waiting_on_dependencies"})
    URL = "{url}/{repo}/{number}"

    def repo(self, full_name: str, deadline: Deadline) -> str:
        """The repo's slug, once Drone knows it (``GET /repos/{owner}/{name}``)."""
        self.read(f"/repos/{_path(full_name)}", deadline)
        return _path(full_name)

    def pipelines(self, repo: str, deadline: Deadline) -> list[Pipeline]:
        answer = self.read(f"/repos/{repo}/builds", deadline, page=1, per_page=50)
        return [self._pipeline(repo, b) for b in answer or []]

    def pipeline(self, repo: str, number: int, deadline: Deadline) -> Pipeline:
        return self._pipeline(repo, self.read(f"/repos/{repo}/builds/{number}", deadline))

    def start(self, repo: str, branch: str, variables: Mapping[str, str]) -> Pipeline | None:
        answer = self.trigger(f"/repos/{repo}/builds", params={"branch": branch, **variables})
        return self._pipeline(repo, answer) if isinstance(answer, dict) else None


ENGINES: dict[str, type[Api]] = {"woodpecker": Woodpecker, "drone": Drone}


def connect(engine: str, url: str, token: str) -> Api:
    """The API client of ``engine`` (``woodpecker`` or ``drone``) at ``url``."""
    if engine not in ENGINES:
        raise CannotWatch(f"CI engine {engine!r} is not one of {', '.join(ENGINES)}")
    if not url.startswith(("http://", "https://")):
        raise CannotWatch(f"CI engine URL {url[:80]!r} is not an http(s) URL")
    if not token:
        raise CannotWatch("no CI token: set CCCI_CI_TOKEN")
    return ENGINES[engine](url, token)


def _path(full_name: str) -> str:
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise CannotWatch(f"{full_name[:80]!r} is not a repo (OWNER/NAME)")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"
