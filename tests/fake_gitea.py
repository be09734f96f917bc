"""A fake Gitea for the ``!testme`` tests: the parts of the API cc-ci serve uses, and the
webhook deliveries, as Gitea documents them — nothing of it is in the product.

Followed from go-gitea/gitea: the swagger spec (``templates/swagger/v1_json.tmpl``) for the
paths, parameters, status codes and bodies (``PullRequest``, ``PRBranchInfo``, ``Comment``,
``CommitStatus``, ``RepoCollaboratorPermission``; ``GET /orgs/{org}/members/{username}``
answers 204 or 404), ``modules/structs/hook.go`` for ``IssueCommentPayload``, and
``services/webhook/deliver.go`` for how a delivery is signed and labelled
(``X-Gitea-Event: issue_comment`` with ``X-Gitea-Event-Type: pull_request_comment`` for a
comment on a PR; ``X-Gitea-Signature``: hex HMAC-SHA256 of the body; ``X-Hub-Signature-256``).
Comments the API creates are delivered too (as Gitea does), from a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "fake-gitea-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_in_thread(app: Starlette, port: int, what: str) -> uvicorn.Server:
    """``app`` on 127.0.0.1:``port`` from a thread of its own, once it answers."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, f"{what} did not start"
        time.sleep(0.05)
    return server


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _head(checkout: Path, branch: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", branch],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _user(login: str) -> dict[str, Any]:
    return {
        "id": abs(hash(login)) % 10_000,
        "login": login,
        "username": login,
        "full_name": "",
        "email": f"{login}@noreply.example",
    }


@dataclass
class Repo:
    owner: str
    name: str
    clone_url: str
    permissions: dict[str, str] = field(default_factory=dict)  # login -> read|write|admin|owner
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def api(self) -> dict[str, Any]:
        return {
            "id": abs(hash(self.full_name)) % 10_000,
            "name": self.name,
            "full_name": self.full_name,
            "owner": _user(self.owner),
            "clone_url": self.clone_url,
            "html_url": f"http://forge/{self.full_name}",
            "private": False,
            "fork": False,
            "default_branch": "main",
        }


class FakeGitea:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.orgs: dict[str, set[str]] = {}
        self.comments: dict[int, dict[str, Any]] = {}  # id -> Comment (+ "_repo", "_index")
        self.statuses: list[dict[str, Any]] = []  # CommitStatus (+ "_sha")
        self.hooks: list[tuple[str, str]] = []  # (url, secret)
        self.requests: list[tuple[str, str]] = []
        self.failing = 0  # the next this many API calls answer 502 (an overloaded forge)
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None

    # -- the test's side ------------------------------------------------------------------

    def add_repo(self, owner: str, name: str, clone_url: str) -> Repo:
        repo = Repo(owner, name, clone_url)
        self.repos[repo.full_name] = repo
        return repo

    def open_pull(
        self, repo: Repo, number: int, head_repo: Repo, head_ref: str, checkout: Path
    ) -> dict[str, Any]:
        """A PR of ``head_ref`` of ``head_repo`` (a fork, or ``repo`` itself)."""
        sha = _head(checkout, head_ref)
        pull = {
            "id": number + 500,
            "number": number,
            "state": "open",
            "title": f"PR {number}",
            "user": _user("contributor"),
            "html_url": f"http://forge/{repo.full_name}/pulls/{number}",
            "head": {
                "label": head_ref,
                "ref": head_ref,
                "sha": sha,
                "repo_id": 2,
                "repo": head_repo.api(),
            },
            "base": {"label": "main", "ref": "main", "sha": "", "repo_id": 1, "repo": repo.api()},
            "merged": False,
            "mergeable": True,
        }
        repo.pulls[number] = pull
        return pull

    def statuses_of(self, sha: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["_sha"] == sha]

    def comments_on(self, repo: Repo, index: int) -> list[dict[str, Any]]:
        return [
            c
            for c in self.comments.values()
            if c["_repo"] == repo.full_name and c["_index"] == index
        ]

    def user_comments(
        self, repo: Repo, index: int, login: str, body: str, *, issue: bool = False
    ) -> httpx.Response | None:
        """``login`` comments on PR (or issue) ``index`` in the web UI; the delivery's answer."""
        comment = self._new_comment(repo, index, login, body)
        payload = self.payload(repo, index, comment, "created", is_pull=not issue)
        return self.deliver(payload)[0] if self.hooks else None

    def payload(
        self, repo: Repo, index: int, comment: dict[str, Any], action: str, *, is_pull: bool = True
    ) -> dict[str, Any]:
        """An ``IssueCommentPayload`` (modules/structs/hook.go)."""
        public = {k: v for k, v in comment.items() if not k.startswith("_")}
        issue = {
            "id": index + 500,
            "url": f"{self.url}/api/v1/repos/{repo.full_name}/issues/{index}",
            "html_url": f"http://forge/{repo.full_name}/issues/{index}",
            "number": index,
            "user": _user("contributor"),
            "title": f"#{index}",
            "body": "",
            "state": "open",
            "comments": 1,
            "labels": [],
            "assignees": None,
            "pull_request": {
                "merged": False,
                "merged_at": None,
                "draft": False,
                "html_url": f"http://forge/{repo.full_name}/pulls/{index}",
            }
            if is_pull
            else None,
            "repository": {
                "id": 1,
                "name": repo.name,
                "owner": repo.owner,
                "full_name": repo.full_name,
            },
        }
        return {
            "action": action,
            "issue": issue,
            "comment": public,
            "repository": repo.api(),
            "sender": public["user"],
            "is_pull": is_pull,
        }

    def push(self, repo: Repo, branch: str, checkout: Path) -> httpx.Response:
        """Someone pushes ``branch`` (at its head in ``checkout``): a ``PushPayload``."""
        after = _head(checkout, branch)
        pusher = _user("maintainer")
        payload = {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": after,
            "compare_url": f"http://forge/{repo.full_name}/compare",
            "commits": [],
            "total_commits": 0,
            "head_commit": None,
            "repository": repo.api(),
            "pusher": pusher,
            "sender": pusher,
        }
        return self.deliver(payload, event="push")[0]

    def deliver(
        self,
        payload: dict[str, Any],
        *,
        event: str = "issue_comment",
        body: bytes | None = None,
        sign: bool = True,
        secret: str | None = None,
    ) -> list[httpx.Response]:
        """POST a delivery to every hook, as services/webhook/deliver.go does."""
        raw = body if body is not None else json.dumps(payload).encode()
        answers = []
        for url, hook_secret in self.hooks:
            key = (secret if secret is not None else hook_secret).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Gitea-Delivery": str(uuid.uuid4()),
                "X-Gitea-Event": event,
                "X-Gitea-Event-Type": "pull_request_comment" if payload.get("is_pull") else event,
            }
            if sign:
                sha256 = hmac.new(key, raw, hashlib.sha256).hexdigest()
                headers |= {
                    "X-Gitea-Signature": sha256,
                    "X-Hub-Signature": "sha1=" + hmac.new(key, raw, hashlib.sha1).hexdigest(),
                    "X-Hub-Signature-256": "sha256=" + sha256,
                }
            answers.append(httpx.post(url, content=raw, headers=headers, timeout=30))
        return answers

    # -- the API ---------------------------------------------------------------------------

    def _new_comment(self, repo: Repo, index: int, login: str, body: str) -> dict[str, Any]:
        with self._lock:
            cid = next(self._ids)
            comment = {
                "id": cid,
                "html_url": f"http://forge/{repo.full_name}/pulls/{index}#c{cid}",
                "pull_request_url": f"http://forge/{repo.full_name}/pulls/{index}",
                "issue_url": f"http://forge/{repo.full_name}/issues/{index}",
                "user": _user(login),
                "original_author": "",
                "original_author_id": 0,
                "body": body,
                "assets": [],
                "created_at": _now(),
                "updated_at": _now(),
                "_repo": repo.full_name,
                "_index": index,
                "_edits": [],
            }
            self.comments[cid] = comment
        return comment

    def _public(self, comment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comment.items() if not k.startswith("_")}

    async def _api(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"token {TOKEN}":
            return JSONResponse({"message": "token is required"}, 401)
        if self.failing > 0:
            self.failing -= 1
            return JSONResponse({"message": "Bad Gateway"}, 502)
        path = request.url.path.removeprefix("/api/v1").strip("/").split("/")
        method = request.method
        try:
            return await self._route(method, path, request)
        except KeyError:
            return JSONResponse({"message": "The target couldn't be found."}, 404)

    async def _route(self, method: str, path: list[str], request: Request) -> Response:
        if path[0] == "orgs" and len(path) == 4 and path[2] == "members" and method == "GET":
            return Response(status_code=204 if path[3] in self.orgs[path[1]] else 404)
        if path[0] != "repos":
            raise KeyError(path[0])
        repo = self.repos[f"{path[1]}/{path[2]}"]
        rest = path[3:]
        if method == "GET" and not rest:
            return JSONResponse(repo.api())
        if method == "GET" and rest[:1] == ["pulls"] and len(rest) == 2:
            return JSONResponse(repo.pulls[int(rest[1])])
        if method == "GET" and rest == ["pulls"]:
            state = request.query_params.get("state", "open")
            page = int(request.query_params.get("page", 1))
            limit = int(request.query_params.get("limit", 30))
            found = [p for p in repo.pulls.values() if state in ("all", p["state"])]
            return JSONResponse(found[(page - 1) * limit : page * limit])
        if method == "GET" and rest[:1] == ["collaborators"] and rest[2:] == ["permission"]:
            login = rest[1]
            if login not in repo.permissions:
                raise KeyError(login)  # GetUserByName: 404 for a user the forge lacks
            permission = repo.permissions[login]
            return JSONResponse(
                {"permission": permission, "role_name": permission, "user": _user(login)}
            )
        if rest[:1] == ["issues"] and len(rest) == 3 and rest[2] == "comments":
            index = int(rest[1])
            if method == "POST":
                body = (await request.json())["body"]
                comment = self._new_comment(repo, index, "cc-ci-bot", body)
                payload = self.payload(repo, index, comment, "created")
                threading.Thread(target=self.deliver, args=(payload,), daemon=True).start()
                return JSONResponse(self._public(comment), 201)
            since = request.query_params.get("since")
            after = datetime.fromisoformat(since) if since else None
            found = [
                self._public(c)
                for c in self.comments_on(repo, index)
                if after is None or datetime.fromisoformat(c["updated_at"]) >= after
            ]
            return JSONResponse(found)
        if method == "PATCH" and rest[:2] == ["issues", "comments"] and len(rest) == 3:
            comment = self.comments[int(rest[2])]
            comment["_edits"].append(comment["body"])
            comment["body"] = (await request.json())["body"]
            comment["updated_at"] = _now()
            return JSONResponse(self._public(comment))
        if method == "POST" and rest[:1] == ["statuses"] and len(rest) == 2:
            option = await request.json()
            if option["state"] not in ("pending", "success", "error", "failure", "warning"):
                return JSONResponse({"message": "invalid state"}, 422)
            status = {
                "id": len(self.statuses) + 1,
                "status": option["state"],
                "target_url": option.get("target_url", ""),
                "description": option.get("description", ""),
                "context": option.get("context", ""),
                "created_at": _now(),
                "creator": _user("cc-ci-bot"),
                "_sha": rest[1],
                "_at": time.monotonic(),
            }
            self.statuses.append(status)
            return JSONResponse({k: v for k, v in status.items() if not k.startswith("_")}, 201)
        raise KeyError("/".join(rest))

    # -- life --------------------------------------------------------------------------------

    def start(self) -> FakeGitea:
        app = Starlette(
            routes=[Route("/api/v1/{path:path}", self._api, methods=["GET", "POST", "PATCH"])]
        )
        self._server = serve_in_thread(app, self.port, "the fake Gitea")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
