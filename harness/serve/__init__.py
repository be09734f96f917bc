"""``cc-ci serve``: ``!testme`` on a pull request, run on this host, the verdict on the PR.

command.py   the ``!testme`` grammar and the webhook signature
payloads.py  what a webhook delivery asks for: a ``!testme`` comment or a push
forge.py     the Gitea/Forgejo REST API the service speaks (token auth)
jobs.py      the durable job queue (SQLite, WAL): received → queued → running → done
runner.py    one job: the PR head fetched, ``cc-ci run`` as its own process tree
dispatch.py  one job handed to a CI engine's agents instead (``--dispatch``)
verdict.py   what a job reports: commit status and the PR comment's markdown
web.py       the web app: ``POST /hook``, job pages, ``/healthz``, the dashboard at ``/``
service.py   intake, the workers and the poller behind it, and their start and stop
"""
