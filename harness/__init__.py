"""cc-ci: test Co-op Cloud recipes through their whole life on a real Docker swarm."""
