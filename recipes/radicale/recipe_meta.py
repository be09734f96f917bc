"""Radicale: CalDAV/CardDAV from PyPI; its web UI answers at /.web/."""

HEALTH_PATH = "/.web/"
