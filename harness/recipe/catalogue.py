"""A recipe's releases, from its tags: ``<semver>+<upstream>`` parsed, ordered, and the one
an existing user upgrades from. Pure: the tags come in as text (``harness.fetch`` lists
them with git).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "TAG_FORMAT",
    "Release",
    "Tag",
    "Version",
    "parse_tags",
    "parse_version",
    "previous_release",
    "releases_of",
]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)\+(\S+)$")

# What ``git for-each-ref refs/tags`` prints of each tag for ``parse_tags``.
TAG_FORMAT = "%(refname:short) %(objecttype) %(objectname) %(*objectname)"


@dataclass(frozen=True)
class Tag:
    name: str
    annotated: bool
    sha: str  # the commit it points at


def parse_tags(refs: str) -> tuple[Tag, ...]:
    """The tags ``git for-each-ref refs/tags --format=<TAG_FORMAT>`` printed, in its order."""
    found = []
    for line in refs.splitlines():
        if not line.strip():
            continue
        name, kind, sha, peeled = [*line.split(), ""][:4]
        annotated = kind == "tag"
        found.append(Tag(name, annotated, peeled if annotated else sha))
    return tuple(found)


Version = tuple[int, int, int]


def parse_version(text: str) -> Version | None:
    """The semver part of ``<semver>+<upstream>``, or None when ``text`` is not one."""
    match = _VERSION.match(text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@dataclass(frozen=True)
class Release:
    tag: str
    version: Version
    sha: str
    annotated: bool


def releases_of(tags: Iterable[Tag]) -> tuple[list[Release], list[str]]:
    """The release tags among ``tags`` in version order, and the tags that are not releases."""
    found, other = [], []
    for tag in tags:
        version = parse_version(tag.name)
        if version is None:
            other.append(tag.name)
            continue
        found.append(Release(tag.name, version, tag.sha, tag.annotated))
    return sorted(found, key=lambda r: r.version), other


def previous_release(
    found: list[Release], candidate_sha: str, candidate_version: Version | None
) -> Release | None:
    """The release an existing user upgrades from: the highest one below the candidate.

    A candidate that is itself a release sits at its tag; an untagged candidate is newer
    than every release of its own version label (it is work on top of them).
    """
    at_candidate = [r for r in found if r.sha == candidate_sha]
    if at_candidate:
        ceiling, inclusive = max(r.version for r in at_candidate), False
    elif candidate_version is not None:
        ceiling, inclusive = candidate_version, True
    else:
        return found[-1] if found else None
    below = [
        r
        for r in found
        if r.sha != candidate_sha and (r.version < ceiling or (inclusive and r.version == ceiling))
    ]
    return below[-1] if below else None
