"""Radicale: CalDAV/CardDAV from PyPI; its web UI answers at /.web/.

The data that must survive the upgrade and come back from a backup: a real event in a
real calendar, written and read over CalDAV with the admin account.
"""

HEALTH_PATH = "/.web/"
_CALENDAR = "/admin/ccci-seed/"
_EVENT = _CALENDAR + "survivor.ics"
_ICS = (
    "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//cc-ci//seed//EN\nBEGIN:VEVENT\n"
    "UID:ccci-survivor\nDTSTAMP:20260101T120000Z\nDTSTART:20260102T090000Z\n"
    "SUMMARY:Survives upgrades and restores\nEND:VEVENT\nEND:VCALENDAR\n"
)


def _auth(ctx):
    return ("admin", ctx.exec("app", ["cat", "/run/secrets/admin_pass"]).stdout.strip())


def SEED_DATA(ctx):
    auth = _auth(ctx)
    if ctx.request("PROPFIND", _CALENDAR, auth=auth, headers={"Depth": "0"}).status_code == 404:
        ctx.request("MKCALENDAR", _CALENDAR, auth=auth).raise_for_status()
    ctx.request(
        "PUT", _EVENT, auth=auth, content=_ICS, headers={"Content-Type": "text/calendar"}
    ).raise_for_status()


def VERIFY_DATA(ctx):
    answer = ctx.get(_EVENT, auth=_auth(ctx))
    assert answer.status_code == 200, f"seeded event: {answer.status_code}"
    return "SUMMARY:Survives upgrades and restores" in answer.text
