"""``cc-ci``: the harness from the shell.

    cc-ci run [RECIPE ...] [--tiers …] [-- PYTEST ARGS]
                                              the lifecycle, as `pytest recipes/<name>` runs it
    cc-ci plan CHECKOUT [-e KEY=VALUE ...]    the resolved deploy plan of a recipe checkout
    cc-ci lint CHECKOUT                       the recipe lint rules R001-R016
    cc-ci compare RUN_A [RUN_B]               level and timing changes between two runs
    cc-ci meta RECIPE_DIR                     validate a recipe dir's recipe_meta.py
    cc-ci report [RUNS_DIR] [OUT_DIR]         a static site of the runs (default runs/ runs/site/)
    cc-ci config                              every setting, its value and where it came from
    cc-ci serve [--forge-url URL] [--poll S]  `!testme` on pull requests (docs/serve.md)
    cc-ci watch [--repo OWNER/NAME] [--commit SHA]
                                              follow a commit's Woodpecker/Drone pipeline
    cc-ci job                                 the `!testme` job of a dispatched pipeline

A RECIPE of ``run`` is a recipe dir (``recipes/<name>`` or a path holding recipe_meta.py),
the name of one under ./recipes, or a recipe repo (a path holding compose.yml), which is
then tested from its own directory's catalogue with the default recipe_meta.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import CcciError
from harness.redact import install_log_filter, redact
from harness.settings import OPTIONS

if TYPE_CHECKING:
    from harness.reports.results import Record

RECIPES_DIR = Path("recipes")


def _meta(args: argparse.Namespace) -> int:
    from harness.recipe import meta

    loaded = meta.load(args.recipe_dir)
    customized = loaded.non_default()
    print(f"{args.recipe_dir}: valid recipe_meta.py, {len(customized)} key(s) customized")
    for name, value in customized.items():
        print(f"  {name} = {value!r}")
    return 0


def _plan(args: argparse.Namespace) -> int:
    from harness.lifecycle.planning import plan_app
    from harness.lifecycle.platform import detect
    from harness.recipe.appenv import app_env, identity

    checkout = args.checkout.resolve()
    if not (checkout / "compose.yml").is_file():
        raise CcciError(f"{args.checkout}: not a recipe checkout (no compose.yml)")
    extra = dict(args.env)
    recipe, source = identity(args.recipe or checkout.name, checkout)
    domain = f"{recipe}.plan.localhost"
    env, sample = app_env(recipe, checkout, domain, domain.replace(".", "_"), extra)
    # The low-port rule applies where the platform publishes the recipe's own ports.
    publishes = detect().ipvs
    print(f"identity: {recipe} (from {source})")
    plan = plan_app(recipe, checkout, env, sample, publishes_ports=publishes)
    print(plan.describe())
    return 2 if plan.policy else 0  # the policy refuses it: a run would not deploy it


def _run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    import pytest

    targets: list[str] = []
    options: list[str] = []
    scratch = tempfile.TemporaryDirectory(prefix="cc-ci-adhoc-")
    names = args.recipes or sorted(
        p.name for p in RECIPES_DIR.glob("*") if (p / "recipe_meta.py").is_file()
    )
    if not names:
        raise CcciError(f"no recipe dirs under {RECIPES_DIR.resolve()} and no recipe given")
    for name in names:
        path = Path(name)
        if (path / "recipe_meta.py").is_file():
            targets.append(str(path))
        elif (RECIPES_DIR / name / "recipe_meta.py").is_file():
            targets.append(str(RECIPES_DIR / name))
        elif (path / "compose.yml").is_file():
            # A recipe repo without a recipe dir: the defaults, from its own directory.
            recipe_dir = Path(scratch.name) / path.resolve().name
            recipe_dir.mkdir()
            (recipe_dir / "recipe_meta.py").write_text('"""Defaults (ad hoc run)."""\n')
            targets.append(str(recipe_dir))
            # Ids read <name>::install, and run dirs still land in ./runs.
            if args.catalogue:
                raise CcciError(
                    f"{name}: a recipe repo is tested from its own directory's"
                    " catalogue; --catalogue does not apply"
                )
            options = [
                "--catalogue",
                str(path.resolve().parent),
                "--rootdir",
                scratch.name,
                "--runs-dir",
                str(Path.cwd() / "runs"),
            ]
        else:
            raise CcciError(f"{name}: neither a recipe dir, a recipe under ./recipes, nor a repo")
    repo_dirs = {
        str(Path(n).resolve().parent) for n in names if (Path(n) / "compose.yml").is_file()
    }
    if repo_dirs and len(repo_dirs) < len(names):
        raise CcciError("run recipe repos and recipe dirs in separate runs")
    if len(repo_dirs) > 1:
        raise CcciError(f"recipe repos from several directories: {', '.join(sorted(repo_dirs))}")
    runs = _Documents()
    for option in OPTIONS:  # the harness's own options, given to `cc-ci run` directly
        value = getattr(args, option.replace("-", "_"))
        if value is not None:
            if option == "runs-dir" and "--runs-dir" in options:
                options[options.index("--runs-dir") + 1] = value
                continue
            options += [f"--{option}", value]
    with scratch:
        code = int(pytest.main([*targets, *options, *pytest_args], plugins=[runs]))
    below = [
        f"{doc.recipe} reached level {doc.level}, expected {doc.expected_level}"
        for _, doc in runs.found
        if doc.level != doc.expected_level
    ]
    for line in below:
        print(f"cc-ci: {line}", file=sys.stderr)
    if runs.found:
        from harness.reports.site import build

        runs_dir = runs.found[0][0].parent
        build(runs_dir, runs_dir / "site")
        print(f"cc-ci: dashboard: {(runs_dir / 'site' / 'index.html').resolve().as_uri()}")
    return code or (1 if below else 0)


class _Documents:
    """Takes the results of the session's runs as it ends (from the plugin's controller)."""

    def __init__(self) -> None:
        self.found: list[tuple[Path, Record]] = []

    def pytest_unconfigure(self, config: Any) -> None:
        from harness.plugin import RUN_DIRS

        run_dirs = config.stash.get(RUN_DIRS, None)
        self.found = run_dirs.documents() if run_dirs is not None else []


def _lint(args: argparse.Namespace) -> int:
    from harness.fetch import tags
    from harness.recipe.lint import lint, render_table, summary

    if not (args.checkout / "compose.yml").is_file():
        raise CcciError(f"{args.checkout}: not a recipe checkout (no compose.yml)")
    findings = lint(args.checkout, tags(args.checkout))
    print(render_table(findings))
    verdict = summary(findings)
    print(
        f"lint: {verdict['status']}"
        + (f" (errors: {', '.join(verdict['errors'])})" if verdict["errors"] else "")
    )
    return 0 if verdict["status"] == "pass" else 1


def _compare(args: argparse.Namespace) -> int:
    from harness.reports.results import compare, previous_run, read

    try:
        run_a, run_b = (
            (previous_run(args.run_a), args.run_a)
            if args.run_b is None
            else (args.run_a, args.run_b)
        )
        before, after = read(run_a), read(run_b)
    except (OSError, ValueError) as exc:
        raise CcciError(f"cannot read results: {exc}") from exc
    if before.recipe != after.recipe:
        raise CcciError(f"runs of different recipes: {before.recipe}, {after.recipe}")
    print(compare(before, after, str(run_a), str(run_b)))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from harness.config import DEFAULT_JANITOR_AGE, DEFAULT_RUN_DEADLINE, FACES, resolve
    from harness.serve.service import Config, serve
    from harness.settings import ini_values

    flags = {name: getattr(args, name.replace("-", "_"), None) for name in FACES["serve"]}
    flags |= {"repos": args.repo, "orgs": args.org}  # each flag repeated: --repo, --org
    values = resolve(FACES["serve"], flags, ini_values(Path.cwd()))

    def setting(name: str) -> str | None:
        return values[name].value

    def words(name: str) -> tuple[str, ...]:
        return tuple((setting(name) or "").replace(",", " ").split())

    def number(name: str, default: float, kind: type[float] | type[int]) -> float:
        raw = setting(name)
        try:
            return kind(raw) if raw else default
        except ValueError:
            raise CcciError(f"serve: {values[name].source} {raw!r} is not a number") from None

    token, secret = setting("forge-token"), setting("webhook-secret") or ""
    forge_url, listen = setting("forge-url"), str(setting("listen"))
    poll = number("poll", 0, float) or None
    repos, orgs = words("repos"), words("orgs")
    if not forge_url:
        raise CcciError("serve: no forge: give --forge-url or CCCI_FORGE_URL")
    if not token:
        raise CcciError("serve: no forge token: set CCCI_FORGE_TOKEN")
    if not secret and not poll:
        raise CcciError("serve: no webhook secret: set CCCI_WEBHOOK_SECRET, or poll (--poll)")
    if poll and not repos:
        raise CcciError("serve: --poll needs the repositories to poll (--repo OWNER/NAME)")
    _host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise CcciError(f"serve: --listen {listen!r} is not HOST:PORT")
    dispatch, ci_repo = setting("dispatch"), setting("ci-repo")
    api = None
    if dispatch:
        from harness.ci.api import connect

        if not ci_repo:
            raise CcciError("serve: --dispatch needs --ci-repo OWNER/NAME (its pipeline runs jobs)")
        api = connect(dispatch, setting("ci-url") or "", setting("ci-token") or "")
    return serve(
        Config(
            forge_url=forge_url,
            token=token,
            secret=secret,
            state_dir=Path(str(setting("state-dir"))).resolve(),
            runs_dir=Path(setting("runs-dir") or "runs").resolve(),
            public_url=(setting("public-url") or f"http://{listen}").rstrip("/"),
            listen=listen,
            parallel=int(number("parallel", 1, int)),
            repos=repos,
            orgs=orgs,
            poll=poll,
            recipes_dir=RECIPES_DIR,
            run_deadline=number("run-deadline", DEFAULT_RUN_DEADLINE, float),
            janitor_age=number("janitor-age", DEFAULT_JANITOR_AGE, float),
            dispatch=api,
            ci_repo=ci_repo or "",
            ci_branch=str(setting("ci-branch")),
        )
    )


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run `!testme` from pull-request comments (Gitea/Forgejo)",
        description="Token and webhook secret come from the environment only:"
        " CCCI_FORGE_TOKEN, CCCI_WEBHOOK_SECRET. Every option is also CCCI_<NAME> in the"
        " environment and ccci_<name> in the ini file; a flag wins over both.",
    )
    add = serve.add_argument
    add("--forge-url", help="the forge's base URL")
    add("--listen", help="HOST:PORT (default: 127.0.0.1:8088)")
    add("--state-dir", help="its durable state (default: state)")
    add("--runs-dir", help="where runs are kept (default: runs)")
    add("--public-url", help="base of the links it posts (default: http://<listen>)")
    add("--parallel", type=int, help="runs at a time (default: 1)")
    add(
        "--repo",
        action="append",
        metavar="OWNER/NAME",
        help="a repository it serves, to which recipes/<name> applies (repeat; CCCI_REPOS;"
        " default: every one that delivers, with the defaults unless --org lists it)",
    )
    add(
        "--org",
        action="append",
        metavar="ORG",
        help="members of this organisation may start runs too, and recipes/<name> applies"
        " to its repositories (repeat; CCCI_ORGS)",
    )
    add(
        "--poll",
        type=float,
        metavar="SECONDS",
        help="read new comments of open PRs this often (where no webhook can be registered)",
    )
    add(
        "--dispatch",
        choices=("woodpecker", "drone"),
        help="hand each job to this CI engine as a pipeline (token: CCCI_CI_TOKEN; docs/ci/)",
    )
    add("--ci-url", help="the CI engine's base URL (with --dispatch)")
    add("--ci-repo", metavar="OWNER/NAME", help="the engine's repo whose pipeline runs jobs")
    add("--ci-branch", help="the branch its pipeline runs on (default: main)")
    add("--run-deadline", type=float, help="as for cc-ci run")
    add("--janitor-age", type=float, help="as for cc-ci run")
    serve.set_defaults(handler=_serve)


def _watch(args: argparse.Namespace) -> int:
    """Exit 0 when the pipeline succeeded, 1 when it failed, 2 when it cannot be watched."""
    from harness.ci.api import CannotWatch, connect
    from harness.ci.watch import EXIT, follow
    from harness.config import FACES, resolve
    from harness.deadline import Deadline
    from harness.fetch import git
    from harness.settings import ini_values

    try:
        repo = args.repo or _remote_repo(git("remote", "get-url", "origin", cwd=Path.cwd()))
        commit = (args.commit or git("rev-parse", "HEAD", cwd=Path.cwd())).strip().lower()
        values = resolve(FACES["watch"], ini=ini_values(Path.cwd()))
        api = connect(
            values["ci-engine"].value or "",
            values["ci-url"].value or "",
            values["ci-token"].value or "",
        )
        try:
            pipeline = follow(
                api,
                repo,
                Deadline(args.deadline, what="the watch"),
                lambda line: print(f"cc-ci: {line}", flush=True),
                commit=commit,
            )
        finally:
            api.close()
        assert pipeline is not None  # nothing stops it but the deadline
    except CcciError as exc:  # CannotWatch, or no git remote / commit to watch
        kind = "" if isinstance(exc, CannotWatch) else "cannot watch: "
        print(f"cc-ci: error: {kind}{exc}", file=sys.stderr)
        return 2
    return EXIT.get(pipeline.outcome, 2)


def _config(args: argparse.Namespace) -> int:
    """Every setting of each face of cc-ci: its value and where it came from."""
    from harness.config import FACES, resolve, table
    from harness.settings import ini_values

    ini = ini_values(Path.cwd())
    for face, names in FACES.items():
        print(f"[{face}]")
        print(table(resolve(names, ini=ini)))
    return 0


def _job(args: argparse.Namespace) -> int:
    """Exit 0 on success, 1 on failure, 2 on an infra error; the outcome as one line."""
    import os

    from harness.serve.runner import run_dispatched

    outcome = run_dispatched(os.environ, RECIPES_DIR)
    print(f"cc-ci: job: {outcome.verdict}: {outcome.summary}", flush=True)
    return {"success": 0, "failure": 1}.get(outcome.verdict, 2)


def _remote_repo(url: str) -> str:
    """``OWNER/NAME`` of a git remote URL (https://host/o/n.git, git@host:o/n.git)."""
    path = url.strip().removesuffix("/").removesuffix(".git")
    parts = path.replace(":", "/").split("/")
    if len(parts) < 2 or not parts[-1] or not parts[-2]:
        raise CcciError(f"the git remote {url.strip()[:80]!r} names no OWNER/NAME")
    return f"{parts[-2]}/{parts[-1]}"


def _report(args: argparse.Namespace) -> int:
    from harness.reports.site import build

    out = args.out_dir or args.runs_dir / "site"
    if not args.runs_dir.is_dir():
        raise CcciError(f"report: {args.runs_dir} is not a directory of runs")
    built = build(args.runs_dir, out)
    print(
        f"cc-ci: {built.runs} runs ({built.pages} pages written, {built.skipped} up to date):"
        f" {(out / 'index.html').resolve().as_uri()}"
    )
    return 0


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return name, value


def _parser() -> argparse.ArgumentParser:
    """cc-ci's command line: one function adds each command, and names its handler."""
    parser = argparse.ArgumentParser(
        prog="cc-ci", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_run,
        _add_plan,
        _add_lint,
        _add_compare,
        _add_meta,
        _add_config,
        _add_report,
        _add_serve,
        _add_watch,
        _add_job,
    ):
        add(commands)
    return parser


def _add_run(commands: Any) -> None:
    run = commands.add_parser("run", help="run the lifecycle of recipes (default: all demos)")
    run.add_argument("recipes", nargs="*", help="recipe dirs, names or repos")
    for option, help_text in OPTIONS.items():
        run.add_argument(f"--{option}", help=help_text)


def _add_plan(commands: Any) -> None:
    plan = commands.add_parser(
        "plan", help="print the deploy plan of a recipe checkout (exit 2: the policy refuses it)"
    )
    plan.add_argument("checkout", type=Path)
    plan.add_argument("--recipe", help="the recipe name (default: the checkout dir's name)")
    plan.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_env_pair,
        help="add to the app env, e.g. COMPOSE_FILE=compose.yml:compose.smtp.yml",
    )
    plan.set_defaults(handler=_plan)


def _add_lint(commands: Any) -> None:
    lint = commands.add_parser("lint", help="lint a recipe checkout (R001-R016)")
    lint.add_argument("checkout", type=Path)
    lint.set_defaults(handler=_lint)


def _add_compare(commands: Any) -> None:
    compare = commands.add_parser(
        "compare", help="level and timing changes between two runs (default: the previous one)"
    )
    compare.add_argument("run_a", type=Path, help="a run dir (alone: compared with its previous)")
    compare.add_argument("run_b", type=Path, nargs="?")
    compare.set_defaults(handler=_compare)


def _add_meta(commands: Any) -> None:
    check = commands.add_parser("meta", help="validate a recipe dir's recipe_meta.py")
    check.add_argument("recipe_dir", type=Path)
    check.set_defaults(handler=_meta)


def _add_config(commands: Any) -> None:
    config = commands.add_parser(
        "config",
        help="every setting: its value and where it came from (flag, CCCI_*, ini, default)",
    )
    config.set_defaults(handler=_config)


def _add_report(commands: Any) -> None:
    report = commands.add_parser("report", help="build the static site of a runs dir")
    report.add_argument("runs_dir", type=Path, nargs="?", default=Path("runs"))
    report.add_argument("out_dir", type=Path, nargs="?")
    report.set_defaults(handler=_report)


def _add_watch(commands: Any) -> None:
    watch = commands.add_parser(
        "watch",
        help="follow a commit's CI pipeline to its end (exit 0 success, 1 failure, 2 cannot)",
        description="The engine comes from CCCI_CI_ENGINE (woodpecker or drone), CCCI_CI_URL"
        " and CCCI_CI_TOKEN (the token is never printed).",
    )
    watch.add_argument("--repo", metavar="OWNER/NAME", help="default: the git remote origin")
    watch.add_argument("--commit", metavar="SHA", help="default: HEAD")
    watch.add_argument(
        "--deadline", type=float, default=3600.0, metavar="SECONDS", help="default: 3600"
    )
    watch.set_defaults(handler=_watch)


def _add_job(commands: Any) -> None:
    job = commands.add_parser(
        "job",
        help="run the `!testme` job a dispatched pipeline carries (docs/ci/)",
        description="Reads CCCI_JOB_ID, CCCI_RECIPE, CCCI_REPO_URL, CCCI_SHA, CCCI_REF,"
        " CCCI_HEADS, CCCI_TIERS, CCCI_UPGRADE_FROM and CCCI_RUNS_DIR, as `cc-ci serve"
        " --dispatch` sets them on the pipeline.",
    )
    job.set_defaults(handler=_job)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, passthrough = argv[:at], argv[at + 1 :]
    args = _parser().parse_args(argv)
    install_log_filter()  # serve, watch, job log too: no secret value in any line
    try:
        if args.command == "run":
            return _run(args, passthrough)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except CcciError as exc:
        print(f"cc-ci: error: {redact(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
