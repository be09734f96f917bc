"""Reading recipes — pure: files and git in, frozen values out, no Docker engine.

customization.py  a recipe dir read once: meta, ops hooks, steps, overlay, custom tests
meta.py           recipe_meta.py: the key registry and its one loader
manifest.py       the customization manifest, secret-shaped values redacted
catalogue.py      recipe repos: mirrors, checkouts, release tags
appenv.py         an app's env, as abra builds it
plan.py           the deploy plan (merged by `docker stack config`, through the seam)
lint.py           the recipe lint rules R001-R016
docs.py           the generated key table of docs/recipe-customization.md
"""
