"""The lifecycle of one recipe: a ``Run`` of its tiers, as plain Python.

pytest items (``harness.collect``) and the CLI call the same functions. A run owns a run
dir, a unique id and every resource it creates (all labelled with the id); ``Run.close()``
removes them and asserts that nothing is left.

Which app each tier uses: install deploys the candidate fresh (what a new user gets);
upgrade deploys a second app at the base release and upgrades it to the candidate (what
an existing user gets). An app no later tier needs is removed as soon as its tier ends.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness import backup, catalogue, deploy, janitor, manifest, teardown
from harness import meta as meta_files
from harness.appenv import app_env
from harness.catalogue import Checkout
from harness.converge import Converged, assert_not_failing, wait_converged
from harness.errors import (
    CatalogueError,
    CcciError,
    ConvergeError,
    MetaError,
    PlanError,
    ProbeError,
    StampError,
)
from harness.hooks import HookCtx, load_deps, raised, verdict
from harness.lint import lint as lint_recipe
from harness.lint import render_table
from harness.lint import summary as lint_summary
from harness.plan import Plan, make_plan
from harness.platform import Platform, Stamp, deploy_config, detect
from harness.results import Results
from harness.trace import Tracer

__all__ = ["App", "Run", "Unverifiable", "install", "upgrade"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300
PROBE_WINDOW = 60.0


class Unverifiable(Exception):
    """A tier could not be verified: ``unver`` (e.g. the base release does not install), or
    ``skip`` when it is structurally impossible (e.g. no earlier release exists)."""

    def __init__(self, reason: str, *, structural: bool = False) -> None:
        super().__init__(reason)
        self.structural = structural


@dataclass
class App:
    """One deployed instance of the recipe."""

    name: str  # the stack
    domain: str
    tree: Checkout
    host_port: int | None
    deploys: int = 0
    plan: Plan | None = None
    env: dict[str, str] = field(default_factory=dict)
    marker: str | None = None  # the data marker last seeded
    marked: list[str] = field(default_factory=list)  # where it was written
    stamps: dict[str, str] = field(default_factory=dict)  # labels observed after deploy

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}" if self.host_port else f"https://{self.domain}"


@dataclass(frozen=True)
class StartedDeploy:
    """A ``docker stack deploy`` that returned; what awaiting it needs to know."""

    started: datetime
    stamp: Stamp
    release: str | None


@dataclass
class Run:
    recipe: str
    recipe_dir: Path
    meta: Any  # RecipeMeta
    catalogue: str
    ref: str | None
    runs_root: Path
    platform: Platform = field(default_factory=detect)
    deadline: float = 3600.0  # seconds the whole run may take, every wait included
    ops: dict[str, Callable[..., Any]] = field(default_factory=dict)  # ops.py pre_<tier> hooks
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.lease = janitor.Lease(self.id).acquire()  # held until close(), or death
        self._ends = time.monotonic() + self.deadline
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.dir = self.runs_root / f"{self.recipe}-{stamp}-{self.id}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.apps: dict[str, App] = {}  # live apps
        self.stacks: list[str] = []  # every stack the run created
        self.overlays: list[str] = []
        self.outcomes: dict[str, str] = {}  # tier -> pass|fail|skip|unver
        self._mirror: Path | None = None
        self.candidate: Checkout | None = None
        self.manifest = manifest.build(self.meta, self.recipe_dir, self.ops)
        self.live_app: App | None = None  # the app later tiers (custom, …) run against
        self.backups: list[tuple[backup.Selection, backup.Archive]] = []
        # The upgrade's first base, deployed while the install converges: (tag, app, deploy).
        self.early_base: tuple[str, App, StartedDeploy] | None = None
        self.custom_started = False
        self.results = Results(
            path=self.dir / "results.json",
            recipe=self.recipe,
            run_id=self.id,
            expected_na=dict(self.meta.EXPECTED_NA),
            expect_fail=self.meta.EXPECT_FAIL,
            platform={"name": self.platform.name, "ipvs": self.platform.ipvs, "overlays": []},
            customization=self.manifest,
            artifacts={"trace": "trace.json", "log": "harness.log"},
        )
        self.results.save()
        self.tracer = Tracer(self.dir / "trace.json", f"run {self.recipe}", run_id=self.id)
        self._log = logging.FileHandler(self.dir / "harness.log")
        self._log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package = logging.getLogger("harness")
        package.setLevel(min(package.getEffectiveLevel(), logging.INFO))
        for handler in (self.tracer, self._log):
            package.addHandler(handler)
        log.info("%s", manifest.render(self.recipe, self.manifest))

    # -- fetch ------------------------------------------------------------------------

    def fetch(self) -> Checkout:
        """Mirror the recipe and check out the candidate (once per run)."""
        if self.candidate is None:
            with self.tracer.span("fetch", catalogue=self.catalogue, ref=self.ref) as span:
                self._mirror = catalogue.mirror(self.recipe, self.catalogue)
                self.candidate = catalogue.checkout(self._mirror, self.ref, self.dir / "candidate")
                span.context["sha"] = self.candidate.sha
            self.results.refs.update(candidate=self.candidate.ref, candidate_sha=self.candidate.sha)
            log.info(
                "%s: candidate %s at %s", self.recipe, self.candidate.ref, self.candidate.short
            )
        return self.candidate

    def lint(self) -> dict[str, Any]:
        """Lint the pristine candidate checkout (no app deploys from it, nothing touches it)."""
        candidate = self.fetch()
        with self.tracer.span("lint"):
            findings = lint_recipe(candidate.path)
            log.info("lint of %s at %s:\n%s", self.recipe, candidate.short, render_table(findings))
        self.results.lint = lint_summary(findings)
        return self.results.lint

    def new_app(self, role: str, ref: str) -> App:
        """A fresh app with its own checkout at ``ref``; names short enough for swarm."""
        assert self._mirror is not None
        suffix = f"{self.id}{role[0]}{len(self.stacks)}"
        short = re.sub(r"[^a-z0-9-]", "-", self.recipe.lower())[:20].strip("-")
        domain = f"{short}-{suffix}.localhost"
        tree = catalogue.checkout(self._mirror, ref, self.dir / f"app-{role}-{len(self.stacks)}")
        port = janitor.reserve_port(self.id) if self.platform.name == "local" else None
        app = App(name=domain.replace(".", "_"), domain=domain, tree=tree, host_port=port)
        self.apps[app.name] = app
        self.stacks.append(app.name)
        return app

    def ctx(self, app: App, op: str) -> HookCtx:
        return HookCtx(
            recipe=self.recipe,
            app=app.name,
            domain=app.domain,
            base_url=app.base_url,
            op=op,
            meta=self.meta,
            run_dir=self.dir,
            env=dict(app.env),
            deps=load_deps(),
        )

    # -- deploy -----------------------------------------------------------------------

    def deploy(self, app: App, op: str, *, release: str | None, upgrade: bool = False) -> None:
        """Plan, create secrets, check images, deploy, verify the stamp, converge, probe.

        ``release`` is the tag being deployed as a release (None: a chaos deploy of the
        checked-out commit).
        """
        self.await_deploy(app, op, self.start_deploy(app, op, release=release, upgrade=upgrade))

    def start_deploy(
        self, app: App, op: str, *, release: str | None, upgrade: bool = False
    ) -> StartedDeploy:
        """The first half of ``deploy``: up to ``docker stack deploy``, which returns at once;
        the swarm converges while the run does something else."""
        extra = self._extra_env(app, op, self.meta.EXTRA_ENV)
        if upgrade:
            extra.update(self._extra_env(app, op, self.meta.UPGRADE_EXTRA_ENV))
        app.env, sample = app_env(self.recipe, app.tree.path, app.domain, app.name, extra)
        steps = self.recipe_dir / meta_files.INSTALL_STEPS
        if steps.is_file():
            self._install_steps(steps, app)
        overlay = self.recipe_dir / meta_files.OVERLAY
        if overlay.is_file():  # the harness's copy; the checkout now differs from any tag
            shutil.copyfile(overlay, app.tree.path / meta_files.OVERLAY)
            app.env["COMPOSE_FILE"] += f":{meta_files.OVERLAY}"
            release = None
        with self.tracer.span("plan", app=app.name, sha=app.tree.sha):
            plan = app.plan = make_plan(self.recipe, app.tree.path, app.env, sample)
        for warning in plan.warnings:
            log.warning("%s: %s", app.name, warning)
        dirty = app.tree.dirty()
        if release is not None and dirty:
            raise PlanError(f"{app.tree.path}: a release deploy refuses a dirty tree")
        stamp = Stamp(chaos=release is None, chaos_version=app.tree.short + ("+U" if dirty else ""))
        config, overlays = deploy_config(plan, self.platform, self.id, stamp, app.host_port)
        self.overlays += [o for o in overlays if o not in self.overlays]
        self._record_platform()
        app.deploys += 1
        deploy_file = self.dir / f"deploy-{app.name}-{app.deploys}.yml"
        with self.tracer.span("deploy", app=app.name, file=deploy_file.name, chaos=stamp.chaos):
            deploy.create_secrets(plan, self.id)
            deploy.ensure_images(plan.images, pull=self.platform.name != "local")
            started = datetime.now(UTC)
            deploy.stack_deploy(app.name, config, deploy_file)
        if op == "install" or upgrade:
            self.call_pre(op, app)
        return StartedDeploy(started, stamp, release)

    def await_deploy(self, app: App, op: str, pending: StartedDeploy) -> None:
        """The second half of ``deploy``: converge, check the stamp, probe."""
        assert app.plan is not None
        plan, started, stamp, release = app.plan, pending.started, pending.stamp, pending.release
        timeout = self.bounded(self._timeout(plan, app.env))
        with self.tracer.span("converge", app=app.name, timeout=timeout) as span:
            converged = wait_converged(app.name, timeout, started)
            span.context["services"] = converged.services
        with self.tracer.span("stamp", app=app.name) as span:
            app.stamps = check_stamp(app, stamp, release)
            span.context["labels"] = app.stamps
        self.results.stamps[app.name] = app.stamps
        self.probe(app, op, converged, since=started)

    def screenshot(self, app: App) -> None:
        """screenshot.png of the installed app's web page (SCREENSHOT(page, ctx) may take
        it instead); recorded as skipped, with the reason, for a recipe without one."""
        assert app.plan is not None
        if app.plan.web is None:
            self.results.artifacts["screenshot"] = "skipped: the recipe has no web service"
            return
        from harness import browser

        path = self.dir / "screenshot.png"
        with self.tracer.span("screenshot", app=app.name):
            try:
                status = browser.screenshot(self.ctx(app, "install"), path, self.meta.SCREENSHOT)
            except Exception as exc:
                if self.meta.SCREENSHOT is not None:
                    raise MetaError(
                        f"SCREENSHOT raised at {raised(self.meta.SCREENSHOT, exc)}"
                    ) from exc
                self.results.artifacts["screenshot"] = f"failed: {type(exc).__name__}: {exc}"
                log.warning("%s: screenshot failed: %s", app.name, exc)
                return
        if status is not None and status >= 400:
            log.warning("%s: the screenshot shows an error page (HTTP %s)", app.name, status)
        self.results.artifacts["screenshot"] = path.name

    def call_pre(self, op: str, app: App) -> None:
        """ops.py's ``pre_<op>(ctx)``, if the recipe dir has one; what it raises fails the
        tier, named by the hook's file and line."""
        hook = self.ops.get(f"pre_{op}")
        if hook is None:
            return
        with self.tracer.span(f"pre_{op}"):
            try:
                hook(self.ctx(app, op))
            except CcciError:
                raise
            except Exception as exc:
                raise MetaError(f"pre_{op} raised at {raised(hook, exc)}") from exc

    def _install_steps(self, steps: Path, app: App) -> None:
        """The recipe dir's install_steps.sh, in the app's checkout, with the app's env."""
        with self.tracer.span("install_steps", app=app.name):
            done = subprocess.run(
                ["bash", str(steps)],
                cwd=app.tree.path,
                capture_output=True,
                text=True,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **app.env},
                timeout=self.bounded(600),
            )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise MetaError(f"{steps}: exited {done.returncode}: {last[0]}")

    def bounded(self, seconds: float) -> float:
        """``seconds``, cut to what is left of the run's deadline."""
        left = self._ends - time.monotonic()
        if left <= 0:
            raise ConvergeError(f"run {self.id} passed its deadline of {self.deadline:.0f}s")
        return min(seconds, left)

    def _record_platform(self) -> None:
        """Which compatibility overlays this run applied, in results.json."""
        self.results.platform["overlays"] = list(self.overlays)
        self.results.save()

    def _extra_env(self, app: App, op: str, value: Any) -> dict[str, str]:
        if callable(value):
            result = value(self.ctx(app, op))
            if not isinstance(result, Mapping):
                raise PlanError(f"{self.recipe}: env hook returned {type(result).__name__}")
            return {str(k): str(v) for k, v in result.items()}
        return dict(value)

    def _timeout(self, plan: Plan, env: Mapping[str, str]) -> int:
        if self.meta.DEPLOY_TIMEOUT is not None:
            return int(self.meta.DEPLOY_TIMEOUT)
        if plan.timeout is not None:
            return plan.timeout
        return int(env["TIMEOUT"]) if env.get("TIMEOUT", "").isdigit() else DEFAULT_TIMEOUT

    def probe(self, app: App, op: str, converged: Converged, since: datetime) -> None:
        """Health (HEALTH_PATH answers one of HEALTH_OK), then READY_PROBE, both bounded.

        Between attempts the stack is watched: an app that dies after converging turns red
        within a few restarts, not after the probe window.
        """
        with self.tracer.span("probe", app=app.name, health=self.meta.HEALTH_PATH):
            assert app.plan is not None

            def retry(attempt: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
                def watched() -> tuple[bool, str]:
                    assert_not_failing(app.name, since)
                    return attempt()

                return retry_for(watched, self.bounded(PROBE_WINDOW))

            if app.plan.web and app.host_port:
                path, ok = self.meta.HEALTH_PATH, self.meta.HEALTH_OK

                def health() -> tuple[bool, str]:
                    try:
                        status = httpx.get(
                            f"{app.base_url}{path}", headers={"Host": app.domain}, timeout=5.0
                        ).status_code
                    except httpx.HTTPError as exc:
                        return False, f"{type(exc).__name__}: {exc}"
                    return status in ok, str(status)

                passed, detail = retry(health)
                if not passed:
                    raise ProbeError(
                        f"health: GET {path} (Host: {app.domain}) answered {detail}, expected"
                        f" one of {', '.join(map(str, ok))}; services: {converged.services}"
                    )
            if self.meta.READY_PROBE is not None:
                ctx = self.ctx(app, op)
                passed, detail = retry(lambda: verdict(self.meta.READY_PROBE, ctx))
                if not passed:
                    raise ProbeError(
                        f"READY_PROBE did not pass within {PROBE_WINDOW:.0f}s: {detail}"
                    )

    # -- teardown ---------------------------------------------------------------------

    def app_logs(self, app: App, lines: int = 30) -> str:
        """The last log lines of every service of ``app`` (evidence for a failing test)."""
        from harness import engine
        from harness.converge import service_logs

        services = engine.client().services.list(
            filters={"label": f"com.docker.stack.namespace={app.name}"}
        )
        return "\n".join(
            f"--- {s.attrs['Spec']['Name']}\n{service_logs(s, lines)}" for s in services
        )

    def release_app(self, app: App) -> None:
        """Remove an app no later tier needs (its volumes and secrets go at close)."""
        teardown.remove_stack(app.name)
        self.apps.pop(app.name, None)
        if self.live_app is app:
            self.live_app = None

    def close(self) -> list[str]:
        """Remove everything of the run and assert that nothing is left."""
        try:
            with self.tracer.span("teardown", stacks=self.stacks) as span:
                removed = teardown.remove_run(self.id, self.stacks)
                span.context["removed"] = len(removed)
                teardown.assert_no_leftovers(self.id, self.stacks)
        finally:
            janitor.release_ports(self.id)
            self.lease.release()
            self.results.finish()
            self.tracer.close_run("finished")
            package = logging.getLogger("harness")
            for handler in (self.tracer, self._log):
                package.removeHandler(handler)
            self._log.close()
        log.info("run %s: removed %d resources, nothing left", self.id, len(removed))
        return removed


def retry_for(attempt: Callable[[], tuple[bool, str]], window: float) -> tuple[bool, str]:
    """Repeat ``attempt`` (backing off to 1 s) until it passes or ``window`` seconds passed."""
    deadline = time.monotonic() + window
    delay = 0.1
    while True:
        passed, detail = attempt()
        if passed or time.monotonic() >= deadline:
            return passed, detail
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def check_stamp(app: App, stamp: Stamp, release: str | None) -> dict[str, str]:
    """The deployed labels must name what we deployed; return the stamp labels seen."""
    from harness import engine

    try:
        service = engine.client().services.get(f"{app.name}_app")
    except Exception as exc:
        raise StampError(f"{app.name}: no app service to carry the deploy stamp ({exc})") from exc
    labels: dict[str, str] = service.attrs["Spec"].get("Labels") or {}
    prefix = f"coop-cloud.{app.name}."
    seen = {k[len(prefix) :]: v for k, v in labels.items() if k.startswith(prefix)}
    if seen.get("chaos-version") != stamp.chaos_version:
        raise StampError(
            f"{app.name}: deployed chaos-version is {seen.get('chaos-version')!r}, but we deployed"
            f" {stamp.chaos_version} (the running spec is not the one we deployed)"
        )
    if release is not None and seen.get("version") != release:
        raise StampError(
            f"{app.name}: deployed version label is {seen.get('version')!r}, but we deployed"
            f" release {release}"
        )
    return seen


# -- tiers --------------------------------------------------------------------------------


def _release_at(tree: Checkout) -> str | None:
    found, _ = catalogue.releases(tree.path)
    at = [r.tag for r in found if r.sha == tree.sha]
    return at[-1] if at else None


def install(run: Run, keep: bool, upgrade_next: bool = False) -> App:
    """Deploy the candidate fresh; keep the app when a later tier needs it. When the upgrade
    tier follows, its first base is deployed meanwhile, so both converge at once."""
    candidate = run.fetch()
    app = run.new_app("install", candidate.sha)
    pending = run.start_deploy(app, "install", release=_release_at(app.tree))
    if upgrade_next and run.early_base is None:
        _start_early_base(run)
    run.await_deploy(app, "install", pending)
    run.screenshot(app)
    if keep:
        run.live_app = app
    else:
        run.release_app(app)
    return app


def _start_early_base(run: Run) -> None:
    """Start the upgrade's first base deploy; whatever goes wrong is left for the upgrade
    tier to meet again and report as its own."""
    try:
        base = upgrade_bases(run)[0]
        app = run.new_app("upgrade", base)
        pending = run.start_deploy(app, "upgrade", release=_base_release(app, base))
    except Exception as exc:
        log.info("%s: no early upgrade base (%s); the upgrade tier deploys it", run.recipe, exc)
        return
    run.early_base = (base, app, pending)


def _base_release(app: App, base: str) -> str | None:
    return base if _release_at(app.tree) == base else None


def upgrade_bases(run: Run) -> list[str]:
    """The tags to upgrade from: UPGRADE_FROM, else the previous release."""
    candidate = run.fetch()
    if run.meta.UPGRADE_FROM:
        return list(run.meta.UPGRADE_FROM)
    found, other = catalogue.releases(candidate.path)
    if not found:
        hint = f" (tags found: {', '.join(other)})" if other else ""
        raise Unverifiable(
            f"no release tags of the form <semver>+<upstream>{hint}", structural=True
        )
    label = _version_label(candidate.path)
    base = catalogue.previous_release(found, candidate.sha, label)
    if base is None:
        raise Unverifiable(f"no release before the candidate ({candidate.short})", structural=True)
    return [base.tag]


def _version_label(tree: Path) -> catalogue.Version | None:
    compose = tree / "compose.yml"
    if not compose.is_file():
        return None
    match = re.search(r"coop-cloud\.\$\{STACK_NAME\}\.version=([^\s\"']+)", compose.read_text())
    return catalogue.parse_version(match[1]) if match else None


def upgrade(run: Run, keep: bool) -> App:
    """Deploy each base release, then upgrade it to the candidate in place."""
    candidate = run.fetch()
    last: App | None = None
    bases = upgrade_bases(run)
    run.results.refs["base_tags"] = bases
    for base in bases:
        if last is not None:
            run.release_app(last)
        early, run.early_base = run.early_base, None
        pending: StartedDeploy | None = None
        if early is not None and early[0] == base:
            _, app, pending = early
        else:
            try:
                app = run.new_app("upgrade", base)
            except CatalogueError as exc:
                raise Unverifiable(f"base {base}: {exc}") from exc
        try:
            if pending is None:
                pending = run.start_deploy(app, "upgrade", release=_base_release(app, base))
            run.await_deploy(app, "upgrade", pending)
        except Exception as exc:
            raise Unverifiable(f"base release {base} does not install: {exc}") from exc
        seed(run, app, "upgrade")
        app.tree = app.tree.switch(candidate.sha)
        run.deploy(app, "upgrade", release=None, upgrade=True)
        verify(run, app, "upgrade")
        last = app
    assert last is not None
    if run.live_app is not None:
        run.release_app(run.live_app)  # the upgraded app carries on from here
    if keep:
        run.live_app = last
    else:
        run.release_app(last)
    return last


# -- data: seed, verify, backup, restore ----------------------------------------------------


def seed(run: Run, app: App, op: str) -> None:
    """Put data in the app that must survive what comes next: a marker in every data
    directory (generic), and the recipe's own data (SEED_DATA)."""
    assert app.plan is not None
    with run.tracer.span("seed", app=app.name, op=op):
        app.marker = f"{run.id}:{op}"
        app.marked = backup.write_marker(app.plan, run.id, app.marker)
        if run.meta.SEED_DATA is not None:
            try:
                run.meta.SEED_DATA(run.ctx(app, op))
            except Exception as exc:
                raise backup.BackupError(
                    f"SEED_DATA before {op} raised at {raised(run.meta.SEED_DATA, exc)}"
                ) from exc
    log.info("%s: seeded data (%s) in %s", app.name, op, ", ".join(app.marked) or "no volume")


def verify(run: Run, app: App, op: str, expected: str | None = None) -> None:
    """The seeded data is there: every marker reads ``expected`` and VERIFY_DATA passes."""
    assert app.plan is not None
    expected = expected or app.marker
    with run.tracer.span("verify", app=app.name, op=op):
        if app.marked:
            found = backup.read_markers(app.plan, run.id, app.marked)
            wrong = {
                loc: found.get(loc) or "(missing)"
                for loc in app.marked
                if found.get(loc) != expected
            }
            if wrong:
                raise backup.BackupError(
                    f"after {op}, data is not what was seeded ({expected}): "
                    + ", ".join(f"{loc}: {text}" for loc, text in wrong.items())
                )
        if run.meta.VERIFY_DATA is not None:
            passed, why = verdict(run.meta.VERIFY_DATA, run.ctx(app, op))
            if not passed:
                raise backup.BackupError(f"VERIFY_DATA after {op} {why}")


def _exec_hook(run: Run, app: App, service: str, hook: str, op: str) -> None:
    run.ctx(app, op).exec(service, ["sh", "-c", hook])


def backup_tier(run: Run) -> None:
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
    run.call_pre("backup", app)
    seed(run, app, "backup")
    for attempt in (1, 2, 3):
        run.backups = []
        with run.tracer.span("backup", app=app.name, attempt=attempt):
            for sel in chosen:
                if hook := sel.hooks.get("backup.pre-hook"):
                    _exec_hook(run, app, sel.service, hook, "backup")
                found = backup.archive(
                    app.plan, run.id, sel, run.dir / f"backup-{sel.service}.tar.gz"
                )
                if hook := sel.hooks.get("backup.post-hook"):
                    _exec_hook(run, app, sel.service, hook, "backup")
                backup.check_usable(found, sel)
                run.backups.append((sel, found))
                run.results.artifacts[f"backup:{sel.service}"] = found.path.name
                log.info(
                    "%s: backup of %s: %s, %d bytes, sha256 %s",
                    app.name,
                    sel.service,
                    found.path.name,
                    found.size,
                    found.sha256,
                )
        if run.meta.BACKUP_VERIFY is None:
            return
        passed, why = verdict(run.meta.BACKUP_VERIFY, run.ctx(app, "backup"))
        if passed:
            return
        log.warning("%s: BACKUP_VERIFY %s (capture %d of 3)", app.name, why, attempt)
    raise backup.BackupError(f"BACKUP_VERIFY rejected 3 captures: {why}")


def _restore_into(run: Run, app: App, op: str) -> None:
    assert app.plan is not None
    from harness import engine

    with run.tracer.span("restore", app=app.name):
        for sel, found in run.backups:
            if hook := sel.hooks.get("restore.pre-hook"):
                _exec_hook(run, app, sel.service, hook, op)
            backup.restore(app.plan, run.id, sel, found)
        # Restart what reads the restored data, so nothing serves what it cached before.
        started = datetime.now(UTC)
        for sel, _ in run.backups:
            engine.client().services.get(f"{app.name}_{sel.service}").force_update()
        converged = wait_converged(app.name, run.bounded(run._timeout(app.plan, app.env)), started)
        for sel, _ in run.backups:
            if hook := sel.hooks.get("restore.post-hook"):
                _exec_hook(run, app, sel.service, hook, op)
    run.probe(app, op, converged, since=started)


def restore_tier(run: Run) -> None:
    """Change the data, restore the backup, prove the backed-up state is back; then the
    disaster-recovery case: the same archive into a fresh app of the candidate."""
    app = run.live_app
    if app is None or not run.backups:
        raise Unverifiable("no backup to restore (the backup tier did not pass)")
    run.call_pre("restore", app)
    backed_up = app.marker
    backup.write_marker(app.plan, run.id, f"{run.id}:changed-after-backup")  # type: ignore[arg-type]
    # The fresh app converges while the running one is restored.
    fresh = run.new_app("restore", run.fetch().sha)
    pending = run.start_deploy(fresh, "restore", release=_release_at(fresh.tree))
    _restore_into(run, app, "restore")
    verify(run, app, "restore", expected=backed_up)
    run.await_deploy(fresh, "restore", pending)
    fresh.marked = app.marked
    _restore_into(run, fresh, "restore")
    verify(run, fresh, "restore into a fresh app", expected=backed_up)
    run.release_app(fresh)
