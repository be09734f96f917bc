"""cc-ci: test Co-op Cloud recipes through their whole life on a real Docker swarm.

The tree is the architecture, by layer:

    plugin.py, cli.py, settings.py, collect.py, fixtures.py
                     the face: the pytest plugin, `cc-ci`, options, items, fixtures
    recipe/          reading recipes — pure, no Docker engine
    swarm/           the one seam to Docker (SDK and CLI), errors translated once
    lifecycle/       runs, apps, tiers, waits, backups: the lifecycle as plain Python
    reports/         results.json and trace.json
    errors.py        the one error tree
"""
