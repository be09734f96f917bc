"""The service's web face, a Starlette app:

POST /hook          Gitea/Forgejo deliveries: a body past 1 MiB refused (413) as soon
                    as it is (by its Content-Length, or while it streams in), the
                    signature checked before anything is parsed (401), then JSON
                    (400); a ``!testme`` comment on a PR, or a push to the default
                    branch (a base run), is recorded (durably) and answered 202;
                    anything else 200, ignored
GET  /jobs/{id}     a job's page: its state, verdict and run (the statuses link here);
                    404 for a job there is not
GET  /healthz       the queue's counts
GET  /…             the dashboard of the runs dir (``cc-ci report``): each run's page
                    and its public files, rebuilt after each job
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from harness.serve.command import signed
from harness.serve.jobs import Jobs
from harness.serve.payloads import Comment, Push, command_in

__all__ = ["app"]

_MAX_BODY = 1 << 20  # a comment delivery is a few kB; more is not a delivery


def app(
    jobs: Jobs, receive: Callable[[Comment | Push], bool], secret: str, site_dir: Path
) -> Starlette:
    """The routes above: deliveries signed with ``secret`` go to ``receive`` (True: new),
    job pages and counts are read from ``jobs``, the rest is served from ``site_dir``."""
    pages = Environment(
        loader=PackageLoader("harness.reports", "templates"),
        autoescape=select_autoescape(["j2"]),
    )

    async def hook(request: Request) -> Response:
        body = await _bounded_body(request)
        if body is None:  # the rest is not read: the connection closes after the answer
            too_large = {"error": f"body too large: past {_MAX_BODY} bytes"}
            return JSONResponse(too_large, 413, headers={"connection": "close"})
        if not signed(body, request.headers, secret):
            return JSONResponse({"error": "signature missing or wrong"}, 401)
        event = request.headers.get("x-gitea-event") or request.headers.get("x-forgejo-event")
        try:
            found = command_in(event or "", json.loads(body))
        except ValueError as exc:  # JSONDecodeError is one
            return JSONResponse({"error": f"not a comment delivery: {exc}"[:200]}, 400)
        if isinstance(found, str):
            return JSONResponse({"ignored": found})
        new = await run_in_threadpool(receive, found)
        return JSONResponse({"received": new}, 202 if new else 200)

    async def job_page(request: Request) -> Response:
        job = await run_in_threadpool(jobs.find, request.path_params["job_id"])
        if job is None:
            return HTMLResponse("<h1>no such job</h1>", 404)
        rows = [
            ("repository", f"{job.repo} #{job.pr}"),
            ("options", job.options),
            ("state", job.state),
            ("commit", job.sha or ""),
            ("verdict", job.verdict or ""),
            ("summary", job.summary or ""),
        ]
        run = Path(job.run_dir).name if job.run_dir else ""
        shown = run if run and (site_dir / "runs" / run).is_dir() else ""
        page = pages.get_template("job.html.j2").render(job=job, rows=rows, run=shown)
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(jobs.counts))

    return Starlette(
        routes=[
            Route("/hook", hook, methods=["POST"]),
            Route("/jobs/{job_id:int}", job_page),
            Route("/healthz", health),
            Mount("/", app=StaticFiles(directory=site_dir, html=True, check_dir=False)),
        ]
    )


async def _bounded_body(request: Request) -> bytes | None:
    """The request's body, or None as soon as it is past ``_MAX_BODY`` — by its
    Content-Length before anything is read, else while it streams in (chunked): the rest
    is never read."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > _MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            return None
    return bytes(body)
