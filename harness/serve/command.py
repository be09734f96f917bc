"""The ``!testme`` command of a PR comment, and the signature of a webhook delivery.

Pure: no I/O. A comment is a command when its first line is ``!testme`` or starts with
``!testme `` (``!testmeplease`` is not). Its options:

    !testme                      every tier
    !testme quick                install (and lint)
    !testme tiers=install,upgrade
    !testme from=<tag>           the upgrade's base release

Anything else after ``!testme`` is a usage error: the reply says how, nothing runs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.recipe.meta_keys import TIERS

__all__ = ["USAGE", "Command", "UsageError", "context", "parse", "signed"]

USAGE = (
    "`!testme` runs every tier; `!testme quick` install and lint; "
    "`!testme tiers=install,upgrade` the tiers named; "
    "`!testme from=<tag>` upgrades from that release (options combine)."
)
_WORD = "!testme"
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


class UsageError(ValueError):
    """A ``!testme`` whose options cannot be run; the message says which one and why."""


@dataclass(frozen=True)
class Command:
    tiers: tuple[str, ...] | None = None  # None: every tier the recipe dir names
    upgrade_from: str | None = None
    options: str = ""  # canonical, e.g. "quick" or "tiers=install,upgrade from=1.0.0+1"

    @property
    def context(self) -> str:
        return context(self.options)


def context(options: str) -> str:
    """The commit-status context of a command: one per option set, so that a quick run's
    status does not overwrite a full one's."""
    return f"cc-ci/{options}" if options else "cc-ci"


def parse(body: str) -> Command | None:
    """The command in a comment body; None when the comment is not one."""
    first = body.strip().splitlines()[0] if body.strip() else ""
    words = first.split()
    if not words or words[0] != _WORD:
        return None
    tiers: tuple[str, ...] | None = None
    upgrade_from: str | None = None
    quick = False
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if word == "quick" and tiers is None:
            tiers, quick = ("install",), True
        elif name == "tiers" and sep and tiers is None:
            tiers = tuple(t for t in value.split(",") if t)
            unknown = [t for t in tiers if t not in TIERS]
            if unknown or not tiers:
                raise UsageError(
                    f"unknown tier(s) {', '.join(unknown) or '(none)'}; tiers are "
                    f"{', '.join(TIERS)}"
                )
        elif name == "from" and sep and upgrade_from is None:
            if not _TAG.match(value):
                raise UsageError(f"`from={value[:40]}` is not a release tag")
            upgrade_from = value
        else:
            raise UsageError(f"`{word[:40]}` is not an option")
    if upgrade_from and tiers is not None and "upgrade" not in tiers:
        raise UsageError("`from=` names the upgrade's base, but the upgrade tier is not run")
    options = ["quick"] if quick else [f"tiers={','.join(tiers)}"] if tiers else []
    options += [f"from={upgrade_from}"] if upgrade_from else []
    return Command(tiers, upgrade_from, " ".join(options))


def signed(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Whether a delivery carries the HMAC-SHA256 of ``body`` under ``secret``, as Gitea and
    Forgejo sign it (``X-Gitea-Signature``/``X-Forgejo-Signature``: hex;
    ``X-Hub-Signature-256``: ``sha256=`` hex). Compared in constant time."""
    if not secret:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    sent = [
        headers.get("x-gitea-signature", ""),
        headers.get("x-forgejo-signature", ""),
        headers.get("x-hub-signature-256", "").removeprefix("sha256="),
    ]
    return any(s and hmac.compare_digest(expected, s.strip().lower().encode()) for s in sent)
