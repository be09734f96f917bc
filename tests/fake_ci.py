"""A fake Woodpecker and a fake Drone for the ``cc-ci watch`` and dispatch tests: the parts
of their REST APIs cc-ci uses, as each documents them — nothing of it is in the product.

Woodpecker, from woodpecker-ci/woodpecker: ``server/router/api.go`` for the routes
(``GET /api/repos/lookup/*repo_full_name``, ``GET|POST /api/repos/:repo_id/pipelines``,
``GET /api/repos/:repo_id/pipelines/:number``), ``server/api/pipeline.go`` for what they do
(a manual pipeline runs the branch head with ``PipelineOptions{branch, variables}`` and
answers 200 with the pipeline; the list is newest first, ``page``/``perPage``), and
``server/model/pipeline.go``, ``workflow.go``, ``step.go``, ``const.go`` for the bodies and
the status words. Drone, from drone/drone: ``handler/api/repos/builds/create.go`` (``POST
/api/repos/{owner}/{name}/builds?branch=&commit=`` and every other query key a build
parameter) and ``core/build.go``, ``core/stage.go``, ``core/step.go``, ``core/status.go``.
Both take ``Authorization: Bearer <token>``.

Faults are injected per request (``fail(kind, n)``: an empty 200, a 204, a 502), and a
pushed commit's pipeline can appear seconds after the push, as an engine's hook handling
makes it. A pipeline is "run" by an agent: a function given the pipeline that returns the
exit code (``ShellAgent`` runs the steps of a pipeline file as the local/exec backends do).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_gitea import free_port, serve_in_thread

TOKEN = "fake-ci-token-fedcba9876543210"

Agent = Callable[["Run"], int]  # runs a pipeline, gives its exit code


@dataclass
class Run:
    number: int
    repo: str
    commit: str
    branch: str
    event: str
    variables: dict[str, str]
    status: str = "pending"
    step_state: str = "pending"
    created: int = field(default_factory=lambda: int(time.time()))
    started: int = 0
    finished: int = 0
    exit_code: int = 0


def after(seconds: float, code: int) -> Agent:
    """An agent that works ``seconds`` and exits with ``code``."""

    def agent(run: Run) -> int:
        time.sleep(seconds)
        return code

    return agent


class ShellAgent:
    """Runs the steps of a pipeline file (``commands`` of each step, in order, with ``sh -e``),
    as Woodpecker's local backend and Drone's exec runner do: the pipeline's variables (or
    parameters) and the step's ``environment`` in the environment, ``$$`` written as ``$``."""

    def __init__(self, pipeline_file: Path, workspace: Path, env: Mapping[str, str]) -> None:
        self.pipeline_file, self.workspace, self.env = pipeline_file, workspace, dict(env)
        self.outputs: list[str] = []

    def __call__(self, run: Run) -> int:
        doc = yaml.safe_load(self.pipeline_file.read_text())
        steps = doc["steps"]
        steps = steps.values() if isinstance(steps, dict) else steps
        for step in steps:
            env = {
                **self.env,
                **run.variables,
                **{k: str(v) for k, v in (step.get("environment") or {}).items()},
            }
            env |= {"CI_COMMIT_SHA": run.commit, "CI_PIPELINE_NUMBER": str(run.number)}
            script = "\n".join(re.sub(r"\$\$", "$", c) for c in step["commands"])
            done = subprocess.run(
                ["sh", "-e", "-c", script],
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            self.outputs.append(done.stdout + done.stderr)
            if done.returncode:
                return done.returncode
        return 0


class FakeEngine:
    """What both fakes share: repos, pipelines, the agent, injected faults."""

    def __init__(self, agent: Agent | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.agent = agent or after(1.0, 0)
        self.repos: dict[str, dict[str, Any]] = {}  # full name -> {"id", "heads"}
        self.runs: dict[str, list[Run]] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._faults: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None

    def add_repo(self, full_name: str, heads: Mapping[str, str]) -> None:
        self.repos[full_name] = {"id": next(self._ids), "heads": dict(heads)}
        self.runs[full_name] = []

    def fail(self, kind: str, times: int = 1, on: str = "") -> None:
        """The next ``times`` API answers are ``kind``: ``empty`` (200, no body), ``204``,
        ``502`` to a GET; or ``lost``: a POST carried out, then answered 502. Only answers to
        paths ending with ``on``, when given."""
        self._faults += [(kind, on)] * times

    def push(self, full_name: str, branch: str, commit: str, appear_after: float = 0.0) -> None:
        """A push: its pipeline exists ``appear_after`` seconds later."""

        def create() -> None:
            time.sleep(appear_after)
            self._create(full_name, commit, branch, "push", {})

        threading.Thread(target=create, daemon=True).start()

    def _create(
        self, full_name: str, commit: str, branch: str, event: str, variables: dict[str, str]
    ) -> Run:
        with self._lock:
            run = Run(len(self.runs[full_name]) + 1, full_name, commit, branch, event, variables)
            self.runs[full_name].append(run)
        threading.Thread(target=self._work, args=(run,), daemon=True).start()
        return run

    def _work(self, run: Run) -> None:
        time.sleep(0.3)
        run.status = run.step_state = "running"
        run.started = int(time.time())
        try:
            code = self.agent(run)
        except Exception:  # the agent broke: the engine's "error"
            code = -1
        run.exit_code = code
        run.finished = int(time.time())
        run.status = run.step_state = (
            "success" if code == 0 else ("failure" if code > 0 else "error")
        )

    def _auth_fault(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response("Unauthorized", 401)
        fault = None
        with self._lock:
            if (
                self._faults
                and self._faults[0][0] != "lost"
                and request.method == "GET"
                and request.url.path.endswith(self._faults[0][1])
            ):
                fault = self._faults.pop(0)[0]
        if fault == "empty":
            return Response(b"", 200, media_type="application/json")
        if fault == "204":
            return Response(status_code=204)
        if fault == "502":
            return Response("Bad Gateway", 502)
        return None

    async def _api(self, request: Request) -> Response:
        answer = self._auth_fault(request) or await self._route(request)
        lost = self._faults and self._faults[0][0] == "lost" and request.method == "POST"
        if answer.status_code < 300 and lost:
            self._faults.pop(0)  # done, but the answer never arrives whole
            answer = Response("Bad Gateway", 502)
        self.requests.append((request.method, request.url.path, answer.status_code))
        return answer

    async def _route(self, request: Request) -> Response:
        raise NotImplementedError

    def start(self) -> FakeEngine:
        app = Starlette(routes=[Route("/api/{path:path}", self._api, methods=["GET", "POST"])])
        self._server = serve_in_thread(app, self.port, "the fake CI engine")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


class FakeWoodpecker(FakeEngine):
    def _by_id(self, repo_id: str) -> str:
        return next(n for n, r in self.repos.items() if str(r["id"]) == repo_id)

    def pipeline(self, run: Run, full: bool) -> dict[str, Any]:
        repo_id = self.repos[run.repo]["id"]
        data: dict[str, Any] = {
            "id": repo_id * 1000 + run.number,
            "number": run.number,
            "author": "alice",
            "parent": 0,
            "event": run.event,
            "status": run.status,
            "errors": None,
            "created": run.created,
            "updated": run.finished or run.started or run.created,
            "started": run.started,
            "finished": run.finished,
            "deploy_to": "",
            "commit": run.commit,
            "branch": run.branch,
            "ref": f"refs/heads/{run.branch}",
            "refspec": "",
            "title": "",
            "message": f"MANUAL PIPELINE @ {run.branch}" if run.event == "manual" else "a push",
            "timestamp": run.created,
            "sender": "alice",
            "author_avatar": "",
            "author_email": "alice@example.org",
            "forge_url": "",
            "reviewed_by": "",
            "reviewed": 0,
        }
        if run.variables:
            data["variables"] = run.variables
        if full:
            step = {
                "id": data["id"] * 10 + 2,
                "uuid": f"step-{data['id']}",
                "pipeline_id": data["id"],
                "pid": 2,
                "ppid": 1,
                "name": "testme",
                "state": run.step_state,
                "error": "",
                "failure": "fail",
                "exit_code": run.exit_code,
                "started": run.started,
                "finished": run.finished,
                "type": "commands",
            }
            data["workflows"] = [
                {
                    "id": data["id"] * 10 + 1,
                    "pipeline_id": data["id"],
                    "pid": 1,
                    "name": "cc-ci",
                    "state": run.status,
                    "error": "",
                    "started": run.started,
                    "finished": run.finished,
                    "agent_id": 1,
                    "platform": "linux/amd64",
                    "environ": {},
                    "children": [step],
                }
            ]
        return data

    async def _route(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/").split("/")
        if path[:2] == ["repos", "lookup"] and len(path) == 4:
            repo = self.repos.get(f"{path[2]}/{path[3]}")
            if repo is None:
                return Response("Not Found", 404)
            owner, name = path[2], path[3]
            return JSONResponse(
                {
                    "id": repo["id"],
                    "owner": owner,
                    "name": name,
                    "full_name": f"{owner}/{name}",
                    "default_branch": "main",
                    "active": True,
                }
            )
        if path[0] != "repos" or len(path) < 3 or path[2] != "pipelines":
            return Response("Not Found", 404)
        try:
            full_name = self._by_id(path[1])
        except StopIteration:
            return Response("Not Found", 404)
        runs = self.runs[full_name]
        if len(path) == 3 and request.method == "GET":
            page = int(request.query_params.get("page", 1))
            per = int(request.query_params.get("perPage", 50))
            newest = sorted(runs, key=lambda r: -r.number)[(page - 1) * per : page * per]
            return JSONResponse([self.pipeline(r, False) for r in newest])
        if len(path) == 3 and request.method == "POST":
            options = await request.json()
            branch = options.get("branch", "")
            head = self.repos[full_name]["heads"].get(branch)
            if head is None:  # BranchHead failed
                return Response("could not fetch branch head", 500)
            run = self._create(
                full_name, head, branch, "manual", dict(options.get("variables") or {})
            )
            return JSONResponse(self.pipeline(run, False))
        if len(path) == 4 and request.method == "GET":
            found = [r for r in runs if str(r.number) == path[3]]
            if not found:
                return Response("Not Found", 404)
            return JSONResponse(self.pipeline(found[0], True))
        return Response("Not Found", 404)


class FakeDrone(FakeEngine):
    def build(self, run: Run, full: bool) -> dict[str, Any]:
        repo_id = self.repos[run.repo]["id"]
        data: dict[str, Any] = {
            "id": repo_id * 1000 + run.number,
            "repo_id": repo_id,
            "trigger": "alice" if run.event == "custom" else "@hook",
            "number": run.number,
            "status": run.status,
            "event": run.event,
            "action": "",
            "link": "",
            "timestamp": run.created,
            "message": "",
            "before": run.commit,
            "after": run.commit,
            "ref": f"refs/heads/{run.branch}",
            "source_repo": "",
            "source": run.branch,
            "target": run.branch,
            "author_login": "alice",
            "author_name": "Alice",
            "author_email": "alice@example.org",
            "author_avatar": "",
            "sender": "alice",
            "params": run.variables,
            "started": run.started,
            "finished": run.finished,
            "created": run.created,
            "updated": run.finished or run.started or run.created,
            "version": 3,
        }
        if full:
            data["stages"] = [
                {
                    "id": data["id"] * 10 + 1,
                    "repo_id": repo_id,
                    "build_id": data["id"],
                    "number": 1,
                    "name": "cc-ci",
                    "kind": "pipeline",
                    "type": "exec",
                    "status": run.status,
                    "errignore": False,
                    "exit_code": run.exit_code,
                    "machine": "agent-1",
                    "os": "linux",
                    "arch": "amd64",
                    "started": run.started,
                    "stopped": run.finished,
                    "created": run.created,
                    "updated": run.created,
                    "version": 2,
                    "on_success": True,
                    "on_failure": False,
                    "steps": [
                        {
                            "id": data["id"] * 10 + 2,
                            "step_id": data["id"] * 10 + 1,
                            "number": 1,
                            "name": "testme",
                            "status": run.step_state,
                            "exit_code": run.exit_code,
                            "started": run.started,
                            "stopped": run.finished,
                            "version": 2,
                        }
                    ],
                }
            ]
        return data

    async def _route(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/").split("/")
        if path[0] != "repos" or len(path) < 3:
            return Response("Not Found", 404)
        full_name = f"{path[1]}/{path[2]}"
        if full_name not in self.repos:
            return JSONResponse({"message": "Not Found"}, 404)
        runs, rest = self.runs[full_name], path[3:]
        if not rest and request.method == "GET":
            owner, name = path[1], path[2]
            return JSONResponse(
                {
                    "id": self.repos[full_name]["id"],
                    "namespace": owner,
                    "name": name,
                    "slug": full_name,
                    "default_branch": "main",
                    "active": True,
                }
            )
        if rest == ["builds"] and request.method == "GET":
            page = int(request.query_params.get("page", 1))
            per = int(request.query_params.get("per_page", 25))
            newest = sorted(runs, key=lambda r: -r.number)[(page - 1) * per : page * per]
            return JSONResponse([self.build(r, False) for r in newest])
        if rest == ["builds"] and request.method == "POST":
            query = dict(request.query_params)
            branch = query.pop("branch", "") or "main"
            commit = query.pop("commit", "") or self.repos[full_name]["heads"].get(branch)
            query.pop("access_token", None)
            if commit is None:
                return JSONResponse({"message": "Not Found"}, 404)
            run = self._create(full_name, commit, branch, "custom", query)
            return JSONResponse(self.build(run, False))
        if len(rest) == 2 and rest[0] == "builds" and request.method == "GET":
            found = [r for r in runs if str(r.number) == rest[1]]
            if not found:
                return JSONResponse({"message": "Not Found"}, 404)
            return JSONResponse(self.build(found[0], True))
        return JSONResponse({"message": "Not Found"}, 404)


def environ_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
