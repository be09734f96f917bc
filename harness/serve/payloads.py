"""What a webhook delivery asks for: Gitea's (and Forgejo's) ``issue_comment`` and
``push`` payloads (``IssueCommentPayload``, ``PushPayload`` of modules/structs/hook.go)
read into a ``Comment`` or a ``Push``, every field checked before it is used — or why the
delivery is ignored."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Comment", "Push", "command_in", "is_command"]

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class Push:
    repo: str
    branch: str
    sha: str
    pusher: str


@dataclass(frozen=True)
class Comment:
    repo: str
    pr: int
    comment_id: int
    user: str
    body: str


def is_command(body: str) -> bool:
    words = body.split(maxsplit=1)
    return bool(words) and words[0] == "!testme"


def _object(parent: dict[str, object], key: str) -> dict[str, object]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not an object")
    return value


def command_in(event: str, payload: object) -> Comment | Push | str:
    """What a delivery asks for — a ``!testme`` comment on a PR, or a push to a repository's
    default branch (the base later PR runs compare with) — or why it is ignored. Raises
    ValueError when the payload is not shaped as Gitea's ``IssueCommentPayload`` or
    ``PushPayload`` (modules/structs/hook.go)."""
    if event not in ("issue_comment", "push"):
        return f"event {event or '(none)'} is not a comment or a push"
    if not isinstance(payload, dict):
        raise ValueError("the payload is not a JSON object")
    repo = _object(payload, "repository")
    full_name = repo.get("full_name")
    if not isinstance(full_name, str) or not _REPO.match(full_name):
        raise ValueError("repository full_name is not owner/name")
    if event == "push":
        return _push(payload, full_name, repo)
    if payload.get("action") != "created":
        return f"comment {payload.get('action')}, not created"
    issue, comment = _object(payload, "issue"), _object(payload, "comment")
    if not (issue.get("pull_request") or payload.get("is_pull")):
        return "a comment on an issue, not a pull request"
    body, user = comment.get("body"), _object(comment, "user").get("login")
    number, comment_id = issue.get("number"), comment.get("id")
    if not (isinstance(body, str) and isinstance(user, str)):
        raise ValueError("comment body or user login missing")
    if not (isinstance(number, int) and isinstance(comment_id, int)):
        raise ValueError("issue number or comment id missing")
    if not is_command(body):
        return "not a !testme comment"
    return Comment(full_name, number, comment_id, user, body)


def _push(payload: dict[str, object], full_name: str, repo: dict[str, object]) -> Push | str:
    ref, after, branch = payload.get("ref"), payload.get("after"), repo.get("default_branch")
    pusher = _object(payload, "pusher").get("login")
    if not all(isinstance(x, str) for x in (ref, after, branch, pusher)):
        raise ValueError("ref, after, default_branch or pusher login missing")
    if ref != f"refs/heads/{branch}":
        return f"a push to {str(ref)[:80]}, not to the default branch"
    if not _SHA.match(str(after)) or set(str(after)) == {"0"}:
        return "a push that deleted the branch" if _SHA.match(str(after)) else "no commit"
    return Push(full_name, str(branch), str(after), str(pusher))
