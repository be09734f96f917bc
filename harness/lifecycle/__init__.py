"""The lifecycle of one recipe, as plain Python (pytest items and the CLI call it).

run.py       Run: the run's own resources — dir, id, lease, results, trace, deadline
app.py       App: one deployed instance — identity, deploy, checks, data
tiers.py     install, upgrade, backup, restore, lint: which app each tier uses
waits.py     the one wait mechanism and its small strategies
converge.py  convergence (pure assessment) and staying up
platform.py  local or remote swarm, and the per-run deploy config that fits it
deploy.py    secrets and the deploy file (the native deployer)
backup.py    backup-bot's selections, archives, restores, data markers
hooks.py     HookCtx, what every recipe hook receives
browser.py   the one chromium of the process
teardown.py  remove a run's resources, prove nothing is left
janitor.py   leases, host ports, and sweeping dead runs
"""
