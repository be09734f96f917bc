"""cc-ci: test Co-op Cloud recipes through their whole life on a real Docker swarm.

The tree is the architecture, by layer, lowest first (``tests/unit/test_layers.py`` holds
each to importing only what is below it; CONTRIBUTING.md draws it):

    errors.py        the one error tree
    redact.py, files.py, deadline.py, proc.py, chromium.py, config.py
                     the primitives: the redactor, the atomic write, the deadline and its
                     poll, a child process, the system chromium, every setting
    recipe/          reading recipes — pure: no engine, no process, no network
    swarm/, fetch.py the seams: Docker (SDK and CLI, errors translated once), git
    reports/         results.json (the typed Record), trace.json, the dashboard, the card
    lifecycle/       runs, apps, tiers, waits, backups: the lifecycle as plain Python
    collect.py, fixtures.py, plugin.py, settings.py, scheduling.py
                     the pytest face
    ci/, serve/, cli.py
                     the other faces: CI engines, `cc-ci serve`, the command line
"""
