"""Reading recipes — pure: files and text in, frozen values out. No Docker engine, no
process, no network: the caller runs ``docker stack config`` (``lifecycle.planning``) and
git (``harness.fetch``) and hands their output in.

customization.py  a recipe dir read once: meta, ops hooks, install steps, overlay, custom tests
meta.py           RecipeMeta, and the one loader of recipe_meta.py and ops.py
meta_keys.py      the registry of recipe_meta.py keys: names, types, defaults, docs
meta_check.py     a recipe_meta.py value checked against its key; a hook's signature
sandbox.py        recipe code run bounded in time and output
docs.py           the generated key table of docs/recipe-customization.md
manifest.py       the customization manifest, secret-shaped values redacted
catalogue.py      a recipe's releases, from its tags (as git lists them)
appenv.py         an app's env, as abra builds it
compose.py        compose files read, interpolated and written as the CLI does
plan.py           the deploy plan, from the resolved compose files and the merged config
policy.py         the deploy policy: what a plan may not ask of the host
lint.py           the recipe lint rules R001-R016, on a checkout and its tags
"""
