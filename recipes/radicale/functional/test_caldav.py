"""Radicale over CalDAV on the live app: an event PUT is served back, the password matters."""

import uuid

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//cc-ci//demo//EN
BEGIN:VEVENT
UID:{uid}
DTSTAMP:20260101T120000Z
DTSTART:20260102T090000Z
SUMMARY:Release planning
END:VEVENT
END:VCALENDAR
"""


def password(app):
    return app.exec("app", ["cat", "/run/secrets/admin_pass"]).stdout.strip()


def test_an_event_put_is_read_back(app):
    auth = ("admin", password(app))
    calendar = f"/admin/{uuid.uuid4().hex[:8]}/"
    made = app.request(
        "MKCOL",
        calendar,
        auth=auth,
        content=(
            '<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            "<D:set><D:prop><D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
            "</D:prop></D:set></D:mkcol>"
        ),
    )
    assert made.status_code == 201, made.text
    uid = uuid.uuid4().hex
    put = app.request(
        "PUT",
        f"{calendar}{uid}.ics",
        auth=auth,
        content=EVENT.format(uid=uid),
        headers={"Content-Type": "text/calendar"},
    )
    assert put.status_code == 201, put.text
    got = app.get(f"{calendar}{uid}.ics", auth=auth)
    assert got.status_code == 200
    assert "SUMMARY:Release planning" in got.text


def test_a_wrong_password_is_refused(app):
    assert app.get("/admin/", auth=("admin", "not-the-password")).status_code == 401
