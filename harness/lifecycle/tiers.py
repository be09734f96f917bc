"""The tiers, as plain Python: what pytest items (``harness.collect``) and the CLI call.

Which app each tier uses — decided here, and only here: install deploys the candidate
fresh (what a new user gets); upgrade deploys a second app at the base release and
upgrades it to the candidate (what an existing user gets). Backup, restore and custom use
the upgraded app — it carries data seeded before the upgrade — or the install app when no
upgrade ran. An app no later tier needs is removed as soon as its tier ends. The recipe's
DEPS are provided before its first app (``deps.provide``), and given to the run.
"""

from __future__ import annotations

import logging
from typing import Any

from harness import fetch
from harness.errors import CatalogueError, InfraError, MetaError, PlanError, RecipeError
from harness.lifecycle import backup, deps
from harness.lifecycle.app import App
from harness.lifecycle.backup import Archive, Selection
from harness.lifecycle.converge import converge
from harness.lifecycle.hooks import raised, verdict
from harness.lifecycle.run import Run
from harness.lifecycle.waits import EngineAnswers, wait_for
from harness.recipe import catalogue
from harness.recipe.lint import lint as lint_recipe
from harness.recipe.lint import render_table
from harness.recipe.lint import summary as lint_summary
from harness.reports.results import TierResult

__all__ = [
    "RUNNERS",
    "Blocked",
    "LintFailure",
    "Unverifiable",
    "back_up",
    "install",
    "lint",
    "restore",
    "run_tier",
    "upgrade",
]

log = logging.getLogger(__name__)

ENGINE_BACK_WINDOW = 60.0  # seconds an infra retry waits for the engine to answer again


class Unverifiable(Exception):
    """A tier could not be verified: ``unver`` (e.g. the base release does not install), or
    ``skip`` when it is structurally impossible (e.g. no earlier release exists)."""

    def __init__(self, reason: str, *, structural: bool = False) -> None:
        super().__init__(reason)
        self.structural = structural


class Blocked(Unverifiable):
    """An earlier tier failed (for the recipe or the platform): this one cannot run."""


class LintFailure(RecipeError):
    """The recipe fails lint rules of error severity."""


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_tier(run: Run, tier: str, *, item: str | None = None) -> None:
    """Run ``tier`` of ``run`` and record its result in ``run.results``; what the tier
    raised is raised again once recorded. Decided here: a tier after one that failed does
    not run (``Blocked``: unver; lint needs no app and always runs); ``Unverifiable`` is
    ``skip`` when structural, else ``unver``; a ``RecipeError`` is ``fail``, the recipe's;
    anything else is the platform's or the harness's (``infra``) or an interruption:
    ``unver``, never a verdict on the recipe — an ``InfraError`` after one more try, once
    the engine answers again. ``item`` is what the log calls the tier (a pytest node id)."""
    item = item or f"{run.name}::{tier}"
    results = run.results
    blocked = results.blocker()
    if blocked is not None and tier != "lint":
        earlier, designed = blocked
        reason = f"{earlier} failed{' as designed' if designed else ''}: {tier} cannot run"
        results.end_tier(tier, TierResult("unver", reason))
        raise Blocked(reason)
    results.start_tier(tier)
    attempt = 1
    try:
        while True:
            try:
                with run.tracer.span(tier, attempt=attempt):
                    RUNNERS[tier](run)
                break
            except InfraError as exc:
                if attempt == 2:
                    raise
                log.warning("%s: infra failure, retrying once: %s", item, _reason(exc))
                # An engine that dropped out for a moment is retried once it is back.
                wait_for(EngineAnswers(run.swarm), ENGINE_BACK_WINDOW, run.deadline)
                attempt = 2
    except Unverifiable as exc:
        results.end_tier(tier, TierResult("skip" if exc.structural else "unver", str(exc)))
        raise
    except RecipeError as exc:
        results.end_tier(tier, TierResult("fail", _reason(exc), failure_class="recipe"))
        raise
    except BaseException as exc:
        results.end_tier(
            tier, TierResult("unver", _reason(exc), failure_class="infra", attempts=attempt)
        )
        raise
    results.end_tier(tier, TierResult("pass"))


def _new_app(run: Run, role: str, ref: str) -> App:
    """A fresh app of the run, the recipe's DEPS provided first (once)."""
    if run.meta.DEPS and not run.dependencies:
        run.use_dependencies(*deps.provide(run))
    return run.new_app(role, ref)


def _keep_or_release(run: Run, app: App, tier: str) -> None:
    if run.needs_app_after(tier):
        run.live_app = app
    else:
        run.release_app(app)


# -- install ------------------------------------------------------------------------------


def install(run: Run) -> App:
    """Deploy the candidate fresh. When the upgrade tier follows, its first base is
    deployed meanwhile, so both converge at once."""
    candidate = run.fetch()
    app = _new_app(run, "install", candidate.sha)
    app.start("install", release=app.release_here())
    if "upgrade" in run.tiers and run.early_base is None:
        _start_early_base(run)
    app.await_ready("install")
    _screenshot(run, app)
    app.settle()
    run.record("install", app=app.name, stamps=app.stamps)
    _keep_or_release(run, app, "install")
    return app


def _start_early_base(run: Run) -> None:
    """Start the upgrade's first base deploy; whatever goes wrong is left for the upgrade
    tier to meet again and report as its own."""
    try:
        base = upgrade_bases(run)[0]
        app = _new_app(run, "upgrade", base)
        app.start("upgrade", release=_base_release(app, base))
    except Exception as exc:
        log.info("%s: no early upgrade base (%s); the upgrade tier deploys it", run.name, exc)
        return
    run.early_base = (base, app)


def _screenshot(run: Run, app: App) -> None:
    """screenshot.png of the installed app's web page (SCREENSHOT(page, ctx) may take
    it instead); recorded as skipped, with the reason, for a recipe without one."""
    assert app.plan is not None
    if app.plan.web is None:
        run.results.artifacts["screenshot"] = "skipped: the recipe has no web service"
        return
    from harness.lifecycle import browser

    path = run.dir / "screenshot.png"
    hook = run.meta.SCREENSHOT
    with run.tracer.span("screenshot", app=app.name):
        try:
            status = browser.screenshot(app.ctx("install"), path, hook, run.deadline.left())
        except Exception as exc:
            if hook is not None:
                raise MetaError(f"SCREENSHOT raised at {raised(hook, exc)}") from exc
            run.results.artifacts["screenshot"] = f"failed: {type(exc).__name__}: {exc}"
            log.warning("%s: screenshot failed: %s", app.name, exc)
            return
    if status is not None and status >= 400:
        log.warning("%s: the screenshot shows an error page (HTTP %s)", app.name, status)
    run.results.artifacts["screenshot"] = path.name


# -- upgrade ------------------------------------------------------------------------------


def _base_release(app: App, base: str) -> str | None:
    return base if app.release_here() == base else None


def upgrade_bases(run: Run) -> list[str]:
    """The tags to upgrade from: the run's --upgrade-from, UPGRADE_FROM, else the previous
    release."""
    candidate = run.fetch()
    if run.upgrade_from:
        return [run.upgrade_from]
    if run.meta.UPGRADE_FROM:
        return list(run.meta.UPGRADE_FROM)
    found, other = fetch.releases(candidate.path)
    if not found:
        hint = f" (tags found: {', '.join(other)})" if other else ""
        raise Unverifiable(
            f"no release tags of the form <semver>+<upstream>{hint}", structural=True
        )
    label = _candidate_version(run)
    base = catalogue.previous_release(found, candidate.sha, label)
    if base is None:
        raise Unverifiable(f"no release before the candidate ({candidate.short})", structural=True)
    return [base.tag]


def _candidate_version(run: Run) -> catalogue.Version | None:
    """The version the candidate says it is: the version label of a plan of it (the
    install app's), when the run has one."""
    sha = run.fetch().sha
    plans = [a.plan for a in run.apps.values() if a.plan is not None and a.tree.sha == sha]
    return catalogue.parse_version(plans[0].version_label or "") if plans else None


def upgrade(run: Run) -> App:
    """Deploy each base release, then upgrade it to the candidate in place."""
    candidate = run.fetch()
    bases = upgrade_bases(run)
    run.results.refs["base_tags"] = bases
    last: App | None = None
    for base in bases:
        if last is not None:
            run.release_app(last)
        early, run.early_base = run.early_base, None
        if early is not None and early[0] != base:
            run.release_app(early[1])
        try:
            if early is not None and early[0] == base:
                app = early[1]
            else:
                app = _new_app(run, "upgrade", base)
                app.start("upgrade", release=_base_release(app, base))
            app.await_ready("upgrade")
        except CatalogueError as exc:
            raise Unverifiable(f"base {base}: {exc}") from exc
        except RecipeError as exc:  # the base's fault: the candidate is not on trial yet
            raise Unverifiable(f"base release {base} does not install: {exc}") from exc
        app.seed("upgrade")
        app.tree = app.tree.switch(candidate.sha)
        app.deploy("upgrade", release=None, upgrade=True)
        app.verify("upgrade")
        app.settle()
        run.record("upgrade", base=base, app=app.name, stamps=app.stamps, marker=app.marker)
        last = app
    assert last is not None
    if run.live_app is not None:
        run.release_app(run.live_app)  # the upgraded app carries on from here
    _keep_or_release(run, last, "upgrade")
    return last


# -- backup and restore -------------------------------------------------------------------


def back_up(run: Run) -> None:
    """Seed, back up as backup-bot would, check the archive is usable (BACKUP_VERIFY)."""
    app = run.live_app
    if app is None or app.plan is None:
        raise Unverifiable("no live app to back up")
    chosen = backup.selections(app.plan)
    capable = run.meta.BACKUP_CAPABLE if run.meta.BACKUP_CAPABLE is not None else bool(chosen)
    if not capable:
        declared = "backup_restore" in run.meta.EXPECTED_NA
        raise Unverifiable(
            "not backup-capable: no service has backupbot.backup=true", structural=declared
        )
    if not chosen:
        raise PlanError("BACKUP_CAPABLE is True, but no service has backupbot.backup=true")
    app.call_pre("backup")
    app.seed("backup")
    why = ""
    for attempt in (1, 2, 3):
        run.backups = [_capture(run, app, sel, attempt) for sel in chosen]
        if run.meta.BACKUP_VERIFY is None:
            break
        passed, why = verdict(
            run.meta.BACKUP_VERIFY, app.ctx("backup"), seconds=run.deadline.left()
        )
        if passed:
            break
        log.warning("%s: BACKUP_VERIFY %s (capture %d of 3)", app.name, why, attempt)
    else:
        raise backup.BackupError(f"BACKUP_VERIFY rejected 3 captures: {why}")
    run.record(
        "backup",
        app=app.name,
        marker=app.marker,
        archives=[
            {"service": s.service, "path": a.path.name, "size": a.size, "sha256": a.sha256}
            for s, a in run.backups
        ],
    )


def _capture(run: Run, app: App, sel: Selection, attempt: int) -> tuple[Selection, Archive]:
    assert app.plan is not None
    with run.tracer.span("backup", app=app.name, service=sel.service, attempt=attempt):
        if hook := sel.hooks.get("backup.pre-hook"):
            app.exec_hook(sel.service, hook, "backup")
        found = backup.archive(
            run.swarm, app.plan, run.id, sel, run.dir / f"backup-{sel.service}.tar.gz"
        )
        if hook := sel.hooks.get("backup.post-hook"):
            app.exec_hook(sel.service, hook, "backup")
        backup.check_usable(found, sel)
    run.results.artifacts[f"backup:{sel.service}"] = found.path.name
    log.info(
        "%s: backup of %s: %s, %d bytes, sha256 %s",
        app.name,
        sel.service,
        found.path.name,
        found.size,
        found.sha256,
    )
    return sel, found


def _restore_running(app: App, pairs: list[tuple[Selection, Archive]], op: str) -> None:
    """The archives into a running app (restore pre-hooks first), then restart what reads
    the restored data, so nothing serves what it cached before."""
    assert app.plan is not None
    run = app.context
    with run.tracer.span("restore", app=app.name, running=True):
        for sel, found in pairs:
            if hook := sel.hooks.get("restore.pre-hook"):
                app.exec_hook(sel.service, hook, op)
            backup.restore(run.swarm, app.plan, run.id, sel, found)
        app.restart(sorted({sel.service for sel, _ in pairs}))


def _post_hooks(app: App, pairs: list[tuple[Selection, Archive]], op: str) -> None:
    for sel, _ in pairs:
        if hook := sel.hooks.get("restore.post-hook"):
            app.exec_hook(sel.service, hook, op)


def restore(run: Run) -> None:
    """Change the data, restore the backup, prove the backed-up state is back — in the
    running app and, at the same time, in a fresh app of the candidate (the disaster
    recovery). A service without restore hooks is restored into the fresh app before its
    first start, as a disaster recovery goes; one with hooks needs its running container
    for them, so it is restored once the fresh app runs."""
    app = run.live_app
    if app is None or app.plan is None or not run.backups:
        raise Unverifiable("no backup to restore (the backup tier did not pass)")
    app.call_pre("restore")
    backed_up = app.marker
    backup.write_marker(run.swarm, app.plan, run.id, f"{run.id}:changed-after-backup")
    cold = [(s, a) for s, a in run.backups if not s.restore_hooks]
    warm = [(s, a) for s, a in run.backups if s.restore_hooks]

    fresh = _new_app(run, "restore", run.fetch().sha)
    fresh.prepare("restore", release=fresh.release_here())
    assert fresh.plan is not None
    if cold:
        with run.tracer.span("restore", app=fresh.name, before_start=True):
            keys = sorted({k for s, _ in cold for k in s.volumes})
            backup.create_volumes(run.swarm, fresh.plan, run.id, keys)
            for sel, found in cold:
                backup.restore(run.swarm, fresh.plan, run.id, sel, found)
    fresh.launch("restore")
    _restore_running(app, run.backups, "restore")
    with run.tracer.span("converge", app=f"{app.name}, {fresh.name}"):
        converge(
            run.swarm,
            [app.stack, fresh.stack],
            min(app.since, fresh.since),
            app.converge_timeout(),
            run.deadline,
            app.restarted,
        )
    fresh.check_stamp()
    if warm:
        _restore_running(fresh, warm, "restore")
    _post_hooks(app, run.backups, "restore")
    app.probe("restore")
    app.verify("restore", expected=backed_up)
    if warm:
        fresh.converge()
        _post_hooks(fresh, warm, "restore")
    fresh.probe("restore")
    fresh.marked = app.marked
    fresh.verify("restore into a fresh app", expected=backed_up)
    for restored in (app, fresh):
        restored.settle()
    run.record("restore", app=app.name, fresh_app=fresh.name, marker=backed_up)
    run.release_app(fresh)


# -- lint ---------------------------------------------------------------------------------


def lint(run: Run) -> dict[str, Any]:
    """Lint the pristine candidate checkout (no app deploys from it, nothing touches it)."""
    candidate = run.fetch()
    with run.tracer.span("lint"):
        findings = lint_recipe(candidate.path, fetch.tags(candidate.path))
        log.info("lint of %s at %s:\n%s", run.name, candidate.short, render_table(findings))
    run.results.lint = lint_summary(findings)
    if run.results.lint["status"] == "fail":
        raise LintFailure(f"lint errors: {', '.join(run.results.lint['errors'])}")
    return run.results.lint


# What runs each tier item; custom is the recipe's own tests (harness.collect).
RUNNERS = {
    "install": install,
    "upgrade": upgrade,
    "backup": back_up,
    "restore": restore,
    "lint": lint,
}
