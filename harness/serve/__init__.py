"""``cc-ci serve``: ``!testme`` on a pull request, run on this host, the verdict on the PR.

command.py   the ``!testme`` grammar and the webhook signature
forge.py     the Gitea/Forgejo REST API the service speaks (token auth)
jobs.py      the durable job queue (SQLite, WAL): received → queued → running → done
runner.py    one job: the PR head fetched, ``cc-ci run`` as its own process tree
verdict.py   what a job reports: commit status and the PR comment's markdown
service.py   the web app (``POST /hook``, the dashboard at ``/``) and its threads
"""
