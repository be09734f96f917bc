"""The lifecycle of one recipe, as plain Python (pytest items and the CLI call it).

The order of imports is ``tiers → deps → run → app``: each module may import only those
after it, and ``app`` none of them — an app reads its run through a frozen ``RunContext``
and reports through a ``Recorder`` (``context.py``), never through the ``Run``.

tiers.py      install, upgrade, back_up, restore, lint: which app each tier uses, and
              run_tier: what a tier's outcome is (blocked, one infra retry, skip/unver/fail)
deps.py       DEPS: each a run of its own, provided before the recipe's first app, as a value
run.py        Run: the run's own resources — dir, id, lease, results, trace, deadline
app.py        App: one deployed instance — identity, deploy, checks, data
context.py    what an app is given: the Swarm protocol (harness.swarm implements it), the
              RunContext, the Recorder
waits.py      the one wait mechanism and its small strategies
converge.py   convergence (pure assessment) and staying up
planning.py   an app's deploy plan: resolved, merged by docker stack config, planned
platform.py   local or remote swarm, and how an app there is reached
deploy.py     secrets and the deploy file that fits the plan to the platform, within the caps
labels.py     the labels every resource of a run carries: its run, its cc-ci host
backup.py     backup-bot's selections, archives, restores, data markers
hooks.py      HookCtx, what every recipe hook receives
browser.py    the one chromium of the process
diskwatch.py  the disk a run's containers and volumes hold, watched against its bound
teardown.py   remove a run's resources, prove nothing is left
janitor.py    leases, host ports, and sweeping dead runs
"""
