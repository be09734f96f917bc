"""The Gitea/Forgejo REST API (``/api/v1``) as the service uses it, and nothing more.

Every call carries ``Authorization: token …``; the token is never part of a message, and
every text posted (a comment, a status's description) is redacted first.
Reads and idempotent writes (a status, a comment edit) are retried on a lost connection
or a 5xx answer; creating a comment is not (a retry could post it twice).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from harness.deadline import Deadline, poll
from harness.errors import InfraError
from harness.redact import redact

__all__ = ["WRITERS", "Forge", "ForgeError", "StatusState"]

StatusState = Literal["pending", "success", "failure", "error", "warning"]  # a commit status
WRITERS = frozenset({"write", "admin", "owner"})  # permissions that may start a run
_ATTEMPTS = 3  # a call's tries, 1 s then 2 s apart


class ForgeError(InfraError):
    """The forge refused or did not answer a call; says which call and the status."""


class Forge:
    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 30.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        retry: bool = True,
        ok: tuple[int, ...] = (),
        json: object = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """One call, tried up to ``_ATTEMPTS`` times (``retry``) while the forge does not
        answer or answers 5xx; a success or an ``ok`` status is the answer."""

        def answered() -> tuple[bool, httpx.Response | ForgeError]:
            try:
                answer = self._http.request(method, path, json=json, params=params)
            except httpx.HTTPError as exc:
                lost = ForgeError(f"{method} {path}: {type(exc).__name__}")
                lost.__cause__ = exc
                return False, lost
            if answer.is_success or answer.status_code in ok:
                return True, answer
            refused = ForgeError(f"{method} {path}: HTTP {answer.status_code}")
            return answer.status_code < 500, refused

        _, got = poll(
            answered,
            Deadline(math.inf),  # the tries bound it, each within the client's timeout
            first=1.0,
            most=2.0,
            wake=self._sleep,
            tries=_ATTEMPTS if retry else 1,
        )
        if isinstance(got, ForgeError):
            raise got
        return got

    # -- reading -------------------------------------------------------------------------

    def pull(self, repo: str, index: int) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}/pulls/{index}``: head sha, head repo, base ref."""
        data: dict[str, Any] = self._call("GET", f"/repos/{repo}/pulls/{index}").json()
        return data

    def clone_url(self, repo: str) -> str:
        """``GET /repos/{owner}/{repo}``: where the repository is cloned from."""
        return str(self._call("GET", f"/repos/{repo}").json()["clone_url"])

    def open_pulls(self, repo: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, 100):
            batch = self._call(
                "GET", f"/repos/{repo}/pulls", params={"state": "open", "page": page, "limit": 50}
            ).json()
            found += batch
            if len(batch) < 50:
                break
        return found

    def comments(self, repo: str, index: int, since: datetime) -> list[dict[str, Any]]:
        """``GET /repos/{owner}/{repo}/issues/{index}/comments?since=…``: the comments
        updated since then."""
        data: list[dict[str, Any]] = self._call(
            "GET", f"/repos/{repo}/issues/{index}/comments", params={"since": since.isoformat()}
        ).json()
        return data

    def may_run(self, repo: str, user: str, orgs: tuple[str, ...]) -> bool:
        """Write, admin or owner on the repo, or a member of one of ``orgs``."""
        answer = self._call(
            "GET", f"/repos/{repo}/collaborators/{quote(user, safe='')}/permission", ok=(403, 404)
        )
        if answer.is_success and answer.json().get("permission") in WRITERS:
            return True
        for org in orgs:
            member = self._call(
                "GET", f"/orgs/{quote(org, safe='')}/members/{quote(user, safe='')}", ok=(404,)
            )
            if member.status_code == 204:
                return True
        return False

    # -- writing -------------------------------------------------------------------------

    def comment(self, repo: str, index: int, body: str) -> int:
        """A new comment on the PR; its id."""
        answer = self._call(
            "POST",
            f"/repos/{repo}/issues/{index}/comments",
            json={"body": redact(body)},
            retry=False,
        )
        return int(answer.json()["id"])

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        self._call(
            "PATCH", f"/repos/{repo}/issues/comments/{comment_id}", json={"body": redact(body)}
        )

    def status(
        self,
        repo: str,
        sha: str,
        state: StatusState,
        description: str,
        target_url: str,
        context: str,
    ) -> None:
        """``POST /repos/{owner}/{repo}/statuses/{sha}``."""
        self._call(
            "POST",
            f"/repos/{repo}/statuses/{sha}",
            json={
                "state": state,
                "description": redact(description)[:140],
                "target_url": target_url,
                "context": context,
            },
        )
