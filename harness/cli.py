"""``cc-ci``: the harness from the shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import CcciError


def _meta(args: argparse.Namespace) -> int:
    from harness import meta

    loaded = meta.load(args.recipe_dir)
    customized = loaded.non_default()
    print(f"{args.recipe_dir}: valid recipe_meta.py, {len(customized)} key(s) customized")
    for name, value in customized.items():
        print(f"  {name} = {value!r}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cc-ci", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("meta", help="validate a recipe dir's recipe_meta.py")
    check.add_argument("recipe_dir", type=Path)
    check.set_defaults(func=_meta)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CcciError as exc:
        print(f"cc-ci: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
