"""An app: one deployed instance of the recipe — its identity in one place, its deploy
(prepare, launch, await), the checks of what was deployed (stamp, health, READY_PROBE,
staying up), and its data (seed, verify).

The identity: a domain unique to the run, and the stack named from it as abra names it
(dots become ``_``); ``app.stack`` finds the services by their short name.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import fetch, proc
from harness.errors import MetaError, PlanError, StampError, last_line
from harness.fetch import Checkout
from harness.lifecycle import backup, deploy, deps
from harness.lifecycle.converge import Converged, converge, settle, watch
from harness.lifecycle.hooks import HookCtx, call, load_deps, raised, verdict
from harness.lifecycle.planning import plan_app
from harness.lifecycle.platform import Stamp, deploy_config, limits
from harness.lifecycle.waits import HookProbe, HttpHealth, wait_for
from harness.recipe import policy
from harness.recipe.appenv import app_env, identity
from harness.recipe.plan import Plan
from harness.reports import progress
from harness.swarm import Stack, ensure_images

if TYPE_CHECKING:
    from harness.lifecycle.run import Run

__all__ = ["App"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300
PROBE_WINDOW = 60.0
INSTALL_STEPS_WINDOW = 600.0


@dataclass(eq=False)
class App:
    run: Run
    role: str  # install, upgrade, restore
    stack: Stack
    domain: str
    tree: Checkout
    host_port: int | None
    env: dict[str, str] = field(default_factory=dict)
    plan: Plan | None = None
    deploys: int = 0
    deploy_file: Path | None = None  # what the last prepare wrote, for launch to deploy
    stamp: Stamp | None = None  # what the last deploy must be stamped with
    release: str | None = None  # the tag the last deploy deployed as a release
    since: datetime = field(default_factory=lambda: datetime.now(UTC))  # last (re)start
    restarted: frozenset[str] = frozenset()  # services cc-ci restarted at ``since``
    marker: str | None = None  # the data marker last seeded
    marked: list[str] = field(default_factory=list)  # where it was written
    stamps: dict[str, str] = field(default_factory=dict)  # labels observed after deploy

    @classmethod
    def named(cls, run: Run, role: str, number: int, tree: Checkout, port: int | None) -> App:
        """The app's identity: ``<recipe>-<run id><role><n>.<platform domain>`` (``localhost``
        here), short enough that every swarm name made from it stays under 64 characters."""
        short = identity(run.name, tree.path)[0][:20].strip("-")
        domain = f"{short}-{run.id}{role[0]}{number}.{run.platform.domain}"
        return cls(run, role, Stack(domain.replace(".", "_")), domain, tree, port)

    @property
    def name(self) -> str:
        return self.stack.name

    @property
    def base_url(self) -> str:
        return self.run.platform.base_url(self.domain, self.host_port)

    def ctx(self, op: str) -> HookCtx:
        return HookCtx(
            recipe=self.run.name,
            app=self.name,
            domain=self.domain,
            base_url=self.base_url,
            proxy=self.run.platform.proxy,
            op=op,
            meta=self.run.meta,
            run_dir=self.run.dir,
            env=dict(self.env),
            deps=load_deps(),
        )

    def release_here(self) -> str | None:
        """The release tag at the checked-out commit, if there is one."""
        found, _ = fetch.releases(self.tree.path)
        at = [r.tag for r in found if r.sha == self.tree.sha]
        return at[-1] if at else None

    def window(self) -> float:
        """Seconds a deploy may take to converge: DEPLOY_TIMEOUT, the recipe's timeout
        label, its TIMEOUT, or the default."""
        assert self.plan is not None
        if self.run.meta.DEPLOY_TIMEOUT is not None:
            return float(self.run.meta.DEPLOY_TIMEOUT)
        if self.plan.timeout is not None:
            return float(self.plan.timeout)
        timeout = self.env.get("TIMEOUT", "")
        return float(timeout) if timeout.isdigit() else DEFAULT_TIMEOUT

    # -- deploy -----------------------------------------------------------------------

    def deploy(self, op: str, *, release: str | None, upgrade: bool = False) -> None:
        """Prepare, launch, and await: converged, stamped as deployed, healthy, ready.

        ``release`` is the tag being deployed as a release (None: a chaos deploy of the
        checked-out commit).
        """
        self.start(op, release=release, upgrade=upgrade)
        self.await_ready(op)

    def start(self, op: str, *, release: str | None, upgrade: bool = False) -> None:
        """Up to ``docker stack deploy``, which returns at once: the swarm converges while
        the run does something else."""
        self.prepare(op, release=release, upgrade=upgrade)
        self.launch(op, upgrade=upgrade)

    def prepare(self, op: str, *, release: str | None, upgrade: bool = False) -> None:
        """Everything before the deploy: env, install_steps.sh, overlay, plan, deploy file,
        secrets, images. Nothing of the app runs yet."""
        run = self.run
        extra = self._extra_env(op, run.meta.EXTRA_ENV)
        if upgrade:
            extra.update(self._extra_env(op, run.meta.UPGRADE_EXTRA_ENV))
        recipe, _ = identity(run.name, self.tree.path)
        self.env, sample = app_env(recipe, self.tree.path, self.domain, self.name, extra)
        if run.recipe.install_steps is not None:
            self._install_steps()
        if run.recipe.overlay is not None:  # the harness's copy: the tree now differs from any tag
            shutil.copyfile(run.recipe.overlay, self.tree.path / run.recipe.overlay.name)
            self.env["COMPOSE_FILE"] += f":{run.recipe.overlay.name}"
            release = None
        with run.tracer.span("plan", app=self.name, sha=self.tree.sha):
            plan = self.plan = plan_app(
                recipe,
                self.tree.path,
                self.env,
                sample,
                publishes_ports=run.platform.ipvs,
                allowed=run.meta.ALLOW,
            )
        for warning in plan.warnings:
            log.warning("%s: %s", self.name, warning)
        with run.tracer.span("policy", app=self.name) as span:
            used = policy.enforce(list(plan.policy), run.meta.ALLOW)  # nothing created yet
            span.context["allowed"] = [v.line() for v in used]
        run.record_policy(used)
        dirty = self.tree.dirty()
        if release is not None and dirty:
            raise PlanError(f"{self.tree.path}: a release deploy refuses a dirty tree")
        self.stamp = Stamp(chaos=release is None, chaos_version=self.tree.short + ("+U" * dirty))
        self.release = release
        config, overlays = deploy_config(
            plan,
            run.platform,
            run.id,
            self.stamp,
            self.host_port,
            limits(run.meta.RESOURCES),
            attach=deps.networks(run),
        )
        run.add_overlays(overlays)
        self.deploys += 1
        self.deploy_file = run.dir / f"deploy-{self.name}-{self.deploys}.yml"
        self.deploy_file.write_text(deploy.render_deploy_file(config))
        with run.tracer.span("secrets", app=self.name):
            deploy.create_secrets(plan, run.id, run.name)
        with run.tracer.span("pull", app=self.name, policy=run.pull):
            seconds = run.deadline.bound(run.deadline.seconds)  # pulls too end with the run
            pulls = fetch.CACHE_DIR / "pulls"
            ensure_images(plan.images, run.pull, pulls, seconds=seconds, say=progress.step)

    def launch(self, op: str, *, upgrade: bool = False) -> None:
        """``docker stack deploy`` of what ``prepare`` wrote; then ``pre_install`` (or
        ``pre_upgrade`` on the upgrade to the candidate), which may shape the app before
        it is checked."""
        run = self.run
        assert self.stamp is not None
        assert self.deploy_file is not None
        with run.tracer.span("deploy", app=self.name, file=self.deploy_file.name) as span:
            span.context["chaos"] = self.stamp.chaos
            self.since, self.restarted = datetime.now(UTC), frozenset()
            self.stack.deploy(self.deploy_file)
        if op == "install" or upgrade:
            run.call_pre(op, self)

    def await_ready(self, op: str) -> Converged:
        """Converged, stamped as deployed, healthy and ready."""
        converged = self.converge()
        self.check_stamp()
        self.probe(op)
        return converged

    def restart(self, shorts: list[str]) -> None:
        """New tasks of the same spec for these services (what reads restored data)."""
        self.since = datetime.now(UTC)
        self.restarted = frozenset(self.stack.service_name(s) for s in shorts)
        self.stack.restart(shorts)

    def converge(self) -> Converged:
        with self.run.tracer.span("converge", app=self.name) as span:
            done = converge(
                [self.stack], self.since, self.window(), self.run.deadline, self.restarted
            )
            span.context["services"] = done.services
        return done

    def check_stamp(self) -> None:
        """The deployed labels must name what we deployed (a rollback or an old spec shows
        other ones)."""
        assert self.stamp is not None
        assert self.plan is not None
        with self.run.tracer.span("stamp", app=self.name) as span:
            carrier = self.plan.stamp_service
            service = self.stack.service(carrier)
            if service is None:
                raise StampError(f"{self.name}: no {carrier} service to carry the deploy stamp")
            prefix = f"coop-cloud.{self.name}."
            seen = {k[len(prefix) :]: v for k, v in service.labels.items() if k.startswith(prefix)}
            labelled = self.plan.version_service
            if labelled and labelled != carrier:  # the version label is on another service
                other = self.stack.service(labelled)
                version = other.labels.get(f"{prefix}version") if other is not None else None
                seen = {**seen, "version": version} if version is not None else seen
            span.context["labels"] = seen
            if seen.get("chaos-version") != self.stamp.chaos_version:
                raise StampError(
                    f"{self.name}: deployed chaos-version is {seen.get('chaos-version')!r}, but we"
                    f" deployed {self.stamp.chaos_version} (the running spec is not the one we"
                    " deployed)"
                )
            if self.release is not None and seen.get("version") != self.release:
                raise StampError(
                    f"{self.name}: deployed version label is {seen.get('version')!r}, but we"
                    f" deployed release {self.release}"
                )
        self.stamps = seen
        self.run.results.stamps[self.name] = seen

    def probe(self, op: str) -> None:
        """Health (HEALTH_PATH answers one of HEALTH_OK, on every platform: the host port
        locally, the proxy with the app's domain on a remote swarm), then READY_PROBE.
        Between attempts the stack is watched: an app that dies after converging turns red
        within a few restarts, not after the probe window."""
        assert self.plan is not None
        meta = self.run.meta

        failing = watch(self.stack, self.since)  # one watcher for every attempt
        with self.run.tracer.span("probe", app=self.name, health=meta.HEALTH_PATH) as span:
            if self.plan.web is not None:
                health = HttpHealth(
                    self.base_url,
                    meta.HEALTH_PATH,
                    self.domain,
                    self.run.platform.proxy,
                    tuple(meta.HEALTH_OK),
                    failing,
                )
                span.context["url"] = health.url
                wait_for(health, PROBE_WINDOW, self.run.deadline)
            ready_probe = meta.READY_PROBE
            if ready_probe is not None:
                ctx = self.ctx(op)
                ready = HookProbe(
                    "READY_PROBE",
                    lambda: verdict(ready_probe, ctx, seconds=PROBE_WINDOW),
                    failing,
                )
                wait_for(ready, PROBE_WINDOW, self.run.deadline)

    def settle(self) -> None:
        """The app stayed up: no task failed since its deploy, and tasks without a
        healthcheck kept running a while, and the run holds no more disk than its bound —
        what a tier asks before it passes."""
        with self.run.tracer.span("settle", app=self.name):
            settle([self.stack], self.since, self.window(), self.run.deadline, self.restarted)
            self.run.disk.sample()
            self.run.deadline.check()

    def logs(self, lines: int = 30) -> str:
        """The last log lines of every service (evidence for a failing test)."""
        return "\n".join(
            f"--- {s.name}\n{self.stack.evidence(s.short, lines)}" for s in self.stack.services()
        )

    def exec_hook(self, service: str, hook: str, op: str) -> None:
        """A backupbot hook (a shell command from the recipe's labels) in ``service``."""
        self.ctx(op).exec(service, ["sh", "-c", hook])

    def _extra_env(self, op: str, value: Any) -> dict[str, str]:
        if callable(value):
            try:
                result = call(value, self.ctx(op), seconds=self.run.deadline.left())
            except Exception as exc:
                raise MetaError(f"env hook raised at {raised(value, exc)}") from exc
            if not isinstance(result, Mapping):
                raise PlanError(f"{self.run.name}: env hook returned {type(result).__name__}")
            return {str(k): str(v) for k, v in result.items()}
        return dict(value)

    def _install_steps(self) -> None:
        """The recipe dir's install_steps.sh, in the app's checkout, with the app's env as
        its variables — less those that steer a process (PATH, BASH_ENV, LD_*, …), which
        a recipe never sets for a process cc-ci starts."""
        steps = self.run.recipe.install_steps
        assert steps is not None
        left_out = proc.dropped(self.env)
        if left_out:
            log.info("%s: install_steps.sh runs without %s", self.name, ", ".join(left_out))
        with self.run.tracer.span("install_steps", app=self.name):
            try:
                done = proc.run(
                    ["bash", str(steps)],
                    cwd=self.tree.path,
                    data=self.env,
                    timeout=self.run.deadline.bound(INSTALL_STEPS_WINDOW),
                )
            except subprocess.TimeoutExpired as exc:
                raise MetaError(f"{steps}: did not finish within {exc.timeout:.0f}s") from exc
        if done.returncode != 0:
            raise MetaError(
                f"{steps}: exited {done.returncode}: {last_line(done.stderr or done.stdout)}"
            )

    # -- data -------------------------------------------------------------------------

    def seed(self, op: str) -> None:
        """Put data in the app that must survive what comes next: a marker in every data
        directory (generic), and the recipe's own data (SEED_DATA)."""
        assert self.plan is not None
        seed_data = self.run.meta.SEED_DATA
        with self.run.tracer.span("seed", app=self.name, op=op):
            self.marker = f"{self.run.id}:{op}"
            self.marked = backup.write_marker(self.plan, self.run.id, self.marker)
            if seed_data is not None:
                try:
                    call(seed_data, self.ctx(op), seconds=self.run.deadline.left())
                except Exception as exc:
                    raise backup.BackupError(
                        f"SEED_DATA before {op} raised at {raised(seed_data, exc)}"
                    ) from exc
        log.info("%s: seeded data (%s) in %s", self.name, op, ", ".join(self.marked) or "no volume")

    def verify(self, op: str, expected: str | None = None) -> None:
        """The seeded data is there: every marker reads ``expected`` and VERIFY_DATA passes."""
        assert self.plan is not None
        expected = expected or self.marker
        with self.run.tracer.span("verify", app=self.name, op=op):
            if self.marked:
                found = backup.read_markers(self.plan, self.run.id, self.marked)
                wrong = {
                    loc: found.get(loc) or "(missing)"
                    for loc in self.marked
                    if found.get(loc) != expected
                }
                if wrong:
                    raise backup.BackupError(
                        f"after {op}, data is not what was seeded ({expected}): "
                        + ", ".join(f"{loc}: {text}" for loc, text in wrong.items())
                    )
            if self.run.meta.VERIFY_DATA is not None:
                passed, why = verdict(
                    self.run.meta.VERIFY_DATA, self.ctx(op), seconds=self.run.deadline.left()
                )
                if not passed:
                    raise backup.BackupError(f"VERIFY_DATA after {op} {why}")
