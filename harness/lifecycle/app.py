"""An app: one deployed instance of the recipe — its identity in one place, its deploy
(prepare, launch, await), the checks of what was deployed (stamp, health, READY_PROBE,
staying up), and its data (seed, verify).

The identity: a domain unique to the run, and the stack named from it as abra names it
(dots become ``_``); ``app.stack`` finds the services by their short name.

An app reads its run through a frozen ``RunContext`` and reports to it through a
``Recorder`` (``harness.lifecycle.context``); it never holds the ``Run``.
"""

from __future__ import annotations

import logging
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import fetch, proc
from harness.errors import MetaError, PlanError, StampError, last_line
from harness.fetch import Checkout
from harness.lifecycle import backup, deploy
from harness.lifecycle.context import Recorder, RunContext, SwarmStack
from harness.lifecycle.converge import Converged, converge, failure_check, settle
from harness.lifecycle.deploy import Stamp, deploy_config, limits
from harness.lifecycle.hooks import HookCtx, call, call_named, raised, verdict
from harness.lifecycle.planning import plan_app
from harness.lifecycle.waits import HookProbe, HttpHealth, wait_for
from harness.recipe import policy
from harness.recipe.appenv import app_env, identity
from harness.recipe.plan import Plan
from harness.reports import progress

__all__ = ["App"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PROBE_WINDOW = 60.0
INSTALL_STEPS_WINDOW = 600.0


@dataclass(eq=False)
class App:
    context: RunContext
    recorder: Recorder
    role: str  # install, upgrade, restore
    stack: SwarmStack
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
    def named(
        cls,
        context: RunContext,
        recorder: Recorder,
        role: str,
        number: int,
        tree: Checkout,
        port: int | None,
    ) -> App:
        """The app's identity: ``<recipe>-<run id><role><n>.<platform domain>`` (``localhost``
        here), short enough that every swarm name made from it stays under 64 characters."""
        short = identity(context.recipe, tree.path)[0][:20].strip("-")
        domain = f"{short}-{context.id}{role[0]}{number}.{context.platform.domain}"
        stack = context.swarm.stack(domain.replace(".", "_"))
        return cls(context, recorder, role, stack, domain, tree, port)

    @property
    def name(self) -> str:
        return self.stack.name

    @property
    def base_url(self) -> str:
        return self.context.platform.base_url(self.domain, self.host_port)

    def ctx(self, op: str) -> HookCtx:
        return HookCtx(
            recipe=self.context.recipe,
            app=self.name,
            domain=self.domain,
            base_url=self.base_url,
            proxy=self.context.platform.proxy,
            op=op,
            meta=self.context.meta,
            run_dir=self.context.dir,
            env=dict(self.env),
            deps=self.context.deps.entries,
            swarm=self.context.swarm,
        )

    def call_pre(self, op: str) -> None:
        """ops.py's ``pre_<op>(ctx)``, if the recipe dir has one; what it raises fails the
        tier, named by the hook's file and line."""
        hook = self.context.customization.ops.get(f"pre_{op}")
        if hook is None:
            return
        with self.context.tracer.span(f"pre_{op}"):
            call_named(f"pre_{op}", hook, self.ctx(op), seconds=self.context.deadline.left())

    def release_here(self) -> str | None:
        """The release tag at the checked-out commit, if there is one."""
        found, _ = fetch.releases(self.tree.path)
        at = [r.tag for r in found if r.sha == self.tree.sha]
        return at[-1] if at else None

    def converge_timeout(self) -> float:
        """Seconds a deploy may take to converge: DEPLOY_TIMEOUT, the recipe's timeout
        label, its TIMEOUT, or the default."""
        assert self.plan is not None
        if self.context.meta.DEPLOY_TIMEOUT is not None:
            return float(self.context.meta.DEPLOY_TIMEOUT)
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
        run = self.context
        extra = self._extra_env(op, run.meta.EXTRA_ENV)
        if upgrade:
            extra.update(self._extra_env(op, run.meta.UPGRADE_EXTRA_ENV))
        recipe, _ = identity(run.recipe, self.tree.path)
        self.env, sample = app_env(recipe, self.tree.path, self.domain, self.name, extra)
        if run.customization.install_steps is not None:
            self._install_steps()
        overlay = run.customization.overlay
        if overlay is not None:  # the harness's copy: the tree now differs from any tag
            shutil.copyfile(overlay, self.tree.path / overlay.name)
            self.env["COMPOSE_FILE"] += f":{overlay.name}"
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
        self.recorder.record_policy(used)
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
            attach=list(run.deps.networks),
        )
        self.recorder.add_overlays(overlays)
        self.deploys += 1
        self.deploy_file = run.dir / f"deploy-{self.name}-{self.deploys}.yml"
        self.deploy_file.write_text(deploy.render_deploy_file(config))
        with run.tracer.span("secrets", app=self.name):
            deploy.create_secrets(run.swarm, plan, run.id, run.recipe)
        with run.tracer.span("pull", app=self.name, policy=run.pull):
            seconds = run.deadline.bound(run.deadline.seconds)  # pulls too end with the run
            pulls = fetch.CACHE_DIR / "pulls"
            swarm, say = run.swarm, progress.step
            swarm.ensure_images(plan.images, run.pull, pulls, seconds=seconds, say=say)

    def launch(self, op: str, *, upgrade: bool = False) -> None:
        """``docker stack deploy`` of what ``prepare`` wrote; then ``pre_install`` (or
        ``pre_upgrade`` on the upgrade to the candidate), which may shape the app before
        it is checked."""
        assert self.stamp is not None
        assert self.deploy_file is not None
        with self.context.tracer.span("deploy", app=self.name, file=self.deploy_file.name) as span:
            span.context["chaos"] = self.stamp.chaos
            self.since, self.restarted = datetime.now(UTC), frozenset()
            self.stack.deploy(self.deploy_file)
        if op == "install" or upgrade:
            self.call_pre(op)

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
        run = self.context
        with run.tracer.span("converge", app=self.name) as span:
            done = converge(
                run.swarm,
                [self.stack],
                self.since,
                self.converge_timeout(),
                run.deadline,
                self.restarted,
            )
            span.context["services"] = done.services
        return done

    def check_stamp(self) -> None:
        """The deployed labels must name what we deployed (a rollback or an old spec shows
        other ones)."""
        assert self.stamp is not None
        assert self.plan is not None
        with self.context.tracer.span("stamp", app=self.name) as span:
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
        self.recorder.record_stamps(self.name, seen)

    def probe(self, op: str) -> None:
        """Health (HEALTH_PATH answers one of HEALTH_OK, on every platform: the host port
        locally, the proxy with the app's domain on a remote swarm), then READY_PROBE.
        Between attempts the stack is watched: an app that dies after converging turns red
        within a few restarts, not after the probe window."""
        assert self.plan is not None
        run = self.context
        meta = run.meta

        failing = failure_check(run.swarm, self.stack, self.since)  # one for every attempt
        with run.tracer.span("probe", app=self.name, health=meta.HEALTH_PATH) as span:
            if self.plan.web is not None:
                health = HttpHealth(
                    self.base_url,
                    meta.HEALTH_PATH,
                    self.domain,
                    run.platform.proxy,
                    tuple(meta.HEALTH_OK),
                    failing,
                )
                span.context["url"] = health.url
                wait_for(health, PROBE_WINDOW, run.deadline)
            ready_probe = meta.READY_PROBE
            if ready_probe is not None:
                ctx = self.ctx(op)
                ready = HookProbe(
                    "READY_PROBE",
                    lambda: verdict(ready_probe, ctx, seconds=PROBE_WINDOW),
                    failing,
                )
                wait_for(ready, PROBE_WINDOW, run.deadline)

    def settle(self) -> None:
        """The app stayed up: no task failed since its deploy, and tasks without a
        healthcheck kept running a while, and the run holds no more disk than its bound —
        what a tier asks before it passes."""
        run = self.context
        with run.tracer.span("settle", app=self.name):
            timeout = self.converge_timeout()
            settle(run.swarm, [self.stack], self.since, timeout, run.deadline, self.restarted)
            run.disk.sample()
            run.deadline.check()

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
                result = call(value, self.ctx(op), seconds=self.context.deadline.left())
            except Exception as exc:
                raise MetaError(f"env hook raised at {raised(value, exc)}") from exc
            if not isinstance(result, Mapping):
                raise PlanError(f"{self.context.recipe}: env hook returned {type(result).__name__}")
            return {str(k): str(v) for k, v in result.items()}
        return dict(value)

    def _install_steps(self) -> None:
        """The recipe dir's install_steps.sh, in the app's checkout. It gets the app's
        identity as variables (``DOMAIN``, ``STACK_NAME``, ``TYPE``: cc-ci's values) and
        the app's whole env as a file, ``$CCCI_APP_ENV`` (``KEY='value'`` lines, each value
        shell-quoted: a line read with ``eval`` sets a shell variable, exported to nothing):
        a recipe's values are never the environment of a process (``OPENSSL_CONF``,
        ``BASH_ENV``, ``LD_PRELOAD`` would steer it)."""
        steps = self.context.customization.install_steps
        assert steps is not None
        env_file = self.context.dir / f"app-env-{self.name}-{self.deploys + 1}.env"
        env_file.write_text(
            "".join(
                f"{name}={shlex.quote(value)}\n"
                for name, value in self.env.items()
                if _NAME.fullmatch(name)
            )
        )
        identity = {
            "DOMAIN": self.domain,
            "STACK_NAME": self.name,
            "TYPE": self.env.get("TYPE", ""),
            "CCCI_APP_ENV": str(env_file),
        }
        with self.context.tracer.span("install_steps", app=self.name):
            try:
                done = proc.run(
                    ["bash", str(steps)],
                    cwd=self.tree.path,
                    own=identity,
                    timeout=self.context.deadline.bound(INSTALL_STEPS_WINDOW),
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
        run = self.context
        seed_data = run.meta.SEED_DATA
        with run.tracer.span("seed", app=self.name, op=op):
            self.marker = f"{run.id}:{op}"
            self.marked = backup.write_marker(run.swarm, self.plan, run.id, self.marker)
            if seed_data is not None:
                try:
                    call(seed_data, self.ctx(op), seconds=run.deadline.left())
                except Exception as exc:
                    raise backup.BackupError(
                        f"SEED_DATA before {op} raised at {raised(seed_data, exc)}"
                    ) from exc
        log.info("%s: seeded data (%s) in %s", self.name, op, ", ".join(self.marked) or "no volume")

    def verify(self, op: str, expected: str | None = None) -> None:
        """The seeded data is there: every marker reads ``expected`` and VERIFY_DATA passes."""
        assert self.plan is not None
        run = self.context
        expected = expected or self.marker
        with run.tracer.span("verify", app=self.name, op=op):
            if self.marked:
                found = backup.read_markers(run.swarm, self.plan, run.id, self.marked)
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
            if run.meta.VERIFY_DATA is not None:
                passed, why = verdict(
                    run.meta.VERIFY_DATA, self.ctx(op), seconds=run.deadline.left()
                )
                if not passed:
                    raise backup.BackupError(f"VERIFY_DATA after {op} {why}")
