"""harness.recipe.meta (the one loader), meta_keys (the registry), meta_check (the checker),
and every error a recipe_meta.py can cause."""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
import textwrap
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.errors import MetaError
from harness.recipe import meta, meta_keys


def write_meta(tmp_path: Path, source: str) -> Path:
    (tmp_path / "recipe_meta.py").write_text(textwrap.dedent(source))
    return tmp_path


# Each bad recipe_meta.py, and what its MetaError must say (besides the file's path).
BAD_INPUTS = [
    pytest.param(
        "SCREENSHOTS = None\n",
        r"unknown key SCREENSHOTS \(did you mean SCREENSHOT\?\)",
        id="typo-suggests",
    ),
    pytest.param(
        "HELTH_PATH = '/'\n",
        r"unknown key HELTH_PATH \(did you mean HEALTH_PATH\?\)",
        id="typo-suggests-2",
    ),
    pytest.param("FROBNICATE = 1\n", r"unknown key FROBNICATE$", id="unknown-no-suggestion"),
    pytest.param(
        "DEPLOY_TIMEOUT = '600'\n",
        r"DEPLOY_TIMEOUT must be int \| None, got str '600'",
        id="type-str-for-int",
    ),
    pytest.param(
        "DEPLOY_TIMEOUT = True\n",
        r"DEPLOY_TIMEOUT must be int \| None, got bool",
        id="type-bool-for-int",
    ),
    pytest.param(
        "HEALTH_OK = 200\n",
        r"HEALTH_OK must be tuple\[int, \.\.\.\], got int 200",
        id="type-scalar-for-tuple",
    ),
    pytest.param(
        "HEALTH_OK = (200, '302')\n", r"HEALTH_OK\[1\] must be int, got str", id="type-tuple-item"
    ),
    pytest.param(
        "EXTRA_ENV = {'PORT': 8080}\n",
        r"EXTRA_ENV\['PORT'\] must be str, got int",
        id="type-dict-value",
    ),
    pytest.param(
        "TIERS = ('install', 'upgarde')\n",
        r"TIERS\[1\]: 'upgarde' is not one of install, upgrade, backup, restore, custom"
        r" \(did you mean 'upgrade'\?\)",
        id="unknown-tier",
    ),
    pytest.param("EXPECT_FAIL = 'deploy'\n", r"EXPECT_FAIL must be 'install' \|", id="bad-expect"),
    pytest.param(
        "EXPECTED_NA = {'install': 'never'}\n",
        r"EXPECTED_NA key: 'install' is not one",
        id="install-never-na",
    ),
    pytest.param(
        "BACKUP_CAPABLE = 'yes'\n", r"BACKUP_CAPABLE must be bool \| None", id="type-tristate"
    ),
    pytest.param(
        "def HEALTH_PATH(ctx):\n    return '/'\n",
        r"HEALTH_PATH must be str, not a function",
        id="callable-on-data-key",
    ),
    pytest.param(
        "DEPS = lambda ctx: ()\n",
        r"DEPS must be tuple\[str, \.\.\.\], not a function",
        id="lambda-on-data-key",
    ),
    pytest.param(
        "READY_PROBE = 'http://x'\n",
        r"READY_PROBE must be a function \(ctx\), got str",
        id="data-on-hook-key",
    ),
    pytest.param(
        "def READY_PROBE(ctx, timeout):\n    pass\n",
        r":1: READY_PROBE must take \(ctx\), but takes \(ctx, timeout\)",
        id="hook-extra-param",
    ),
    pytest.param(
        "def READY_PROBE():\n    pass\n",
        r"READY_PROBE must take \(ctx\), but takes \(\)",
        id="hook-missing-param",
    ),
    pytest.param(
        "\n\ndef SCREENSHOT(ctx, page):\n    pass\n",
        r":3: SCREENSHOT must take \(page, ctx\), but takes \(ctx, page\)",
        id="hook-swapped-params",
    ),
    pytest.param(
        "def READY_PROBE(*args):\n    pass\n", r"READY_PROBE must take \(ctx\)", id="hook-varargs"
    ),
    pytest.param(
        "def EXTRA_ENV(ctx, *, region):\n    return {}\n",
        r"EXTRA_ENV must take \(ctx\), but takes \(ctx, \*, region\)",
        id="hook-required-kwonly",
    ),
    pytest.param(
        "X = 1\nHEALTH_OK = (200,)\n1 / 0\n",
        r":3: ZeroDivisionError while executing: division by zero",
        id="raises",
    ),
    pytest.param(
        "def f():\n    raise KeyError('k')\n\nTIERS = f()\n",
        r":2: KeyError while executing: 'k'",
        id="raises-in-function",
    ),
    pytest.param(
        "import no_such_module_ccci\n",
        r":1: ModuleNotFoundError while executing: No module named",
        id="bad-import",
    ),
    pytest.param("HEALTH_PATH = '/\n", r":1: syntax error: ", id="syntax-error"),
]


@pytest.mark.parametrize(("source", "message"), BAD_INPUTS)
def test_bad_recipe_meta_raises_meta_error_naming_file_and_key(
    tmp_path: Path, source: str, message: str
) -> None:
    recipe_dir = write_meta(tmp_path, source)
    with pytest.raises(MetaError) as caught:
        meta.load(recipe_dir)
    text = str(caught.value)
    assert text.startswith(str(recipe_dir / "recipe_meta.py")), text
    assert re.search(message, text, re.MULTILINE), text


def test_every_problem_of_a_file_is_reported_one_per_line(tmp_path: Path) -> None:
    write_meta(tmp_path, "HELTH_OK = (200,)\nDEPLOY_TIMEOUT = 'x'\n")
    with pytest.raises(MetaError) as caught:
        meta.load(tmp_path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert "HELTH_OK (did you mean HEALTH_OK?)" in lines[0]
    assert "DEPLOY_TIMEOUT must be" in lines[1]


def test_unreadable_file_is_a_meta_error(tmp_path: Path) -> None:
    (tmp_path / "recipe_meta.py").write_bytes(b"HEALTH_PATH = '\xff'\n")
    with pytest.raises(MetaError, match="cannot read"):
        meta.load(tmp_path)


def test_missing_recipe_dir_is_a_meta_error(tmp_path: Path) -> None:
    with pytest.raises(MetaError, match="no such recipe dir"):
        meta.load(tmp_path / "nope")


def test_good_file_yields_frozen_meta_with_normalized_values(tmp_path: Path) -> None:
    write_meta(
        tmp_path,
        """
        import json                     # imports are ignored
        from pathlib import Path
        helper_value = 3                # lower-case names are ignored
        _PRIVATE = "ignored too"

        DEPLOY_TIMEOUT = 600
        HEALTH_OK = [200, 302]          # a list is accepted and frozen to a tuple
        EXTRA_ENV = {"COMPOSE_FILE": "compose.yml:compose.smtp.yml"}
        UPGRADE_FROM = "1.0.0+2.0"      # one tag is a one-element tuple
        BACKUP_CAPABLE = False
        EXPECTED_NA = {"custom": "no UI to test"}

        def READY_PROBE(ctx):
            return ctx.get("/api").status_code == 200

        def SCREENSHOT(page, ctx, *, full_page=False):
            page.screenshot(path=ctx.run_dir / "screenshot.png", full_page=full_page)
    """,
    )
    loaded = meta.load(tmp_path)
    assert isinstance(loaded, meta.RecipeMeta)
    assert loaded.DEPLOY_TIMEOUT == 600
    assert loaded.HEALTH_OK == (200, 302)
    assert loaded.UPGRADE_FROM == ("1.0.0+2.0",)
    assert loaded.BACKUP_CAPABLE is False
    assert loaded.EXTRA_ENV == {"COMPOSE_FILE": "compose.yml:compose.smtp.yml"}
    assert callable(loaded.READY_PROBE)
    assert loaded.HEALTH_PATH == "/"
    assert set(loaded.non_default()) == {
        "DEPLOY_TIMEOUT",
        "HEALTH_OK",
        "EXTRA_ENV",
        "UPGRADE_FROM",
        "BACKUP_CAPABLE",
        "EXPECTED_NA",
        "READY_PROBE",
        "SCREENSHOT",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.HEALTH_PATH = "/x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        loaded.EXTRA_ENV["NEW"] = "x"  # type: ignore[index]  # read-only at run time too


def test_hook_value_for_a_data_or_hook_key_is_kept(tmp_path: Path) -> None:
    write_meta(tmp_path, "def EXTRA_ENV(ctx):\n    return {'DOMAIN_ALIAS': ctx.domain}\n")
    loaded = meta.load(tmp_path)
    assert callable(loaded.EXTRA_ENV)
    assert loaded.non_default() == {"EXTRA_ENV": loaded.EXTRA_ENV}


def test_tri_state_backup_capable(tmp_path: Path) -> None:
    assert meta.RecipeMeta().BACKUP_CAPABLE is None  # detect from labels
    for value in (True, False, None):
        write_meta(tmp_path, f"BACKUP_CAPABLE = {value}\n")
        assert meta.load(tmp_path).BACKUP_CAPABLE is value


def test_recipe_dir_without_recipe_meta_gets_defaults(tmp_path: Path) -> None:
    loaded = meta.load(tmp_path)
    assert loaded == meta.RecipeMeta()
    assert loaded.non_default() == {}
    assert loaded.TIERS == meta_keys.TIERS


def test_deprecated_key_warns_but_loads(tmp_path: Path) -> None:
    write_meta(tmp_path, "CHAOS_BASE_DEPLOY = True\n")
    with pytest.warns(meta.MetaWarning, match=r"recipe_meta.py: CHAOS_BASE_DEPLOY is deprecated"):
        loaded = meta.load(tmp_path)
    assert loaded.CHAOS_BASE_DEPLOY is True


def test_current_keys_do_not_warn(tmp_path: Path) -> None:
    write_meta(tmp_path, "HEALTH_PATH = '/health'\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta.load(tmp_path)


def _as_loaded(annotation: typing.Any) -> typing.Any:
    """What a key's annotation is of the loaded value: a dict is a read-only Mapping, its
    keys (str, or a Literal of str) str."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, map(_as_loaded, args))
    if origin is dict:
        key, value = args
        assert key is str or all(isinstance(a, str) for a in typing.get_args(key)), key
        return types.GenericAlias(Mapping, (str, value))
    return annotation


def test_recipe_meta_fields_are_exactly_the_registry() -> None:
    """RecipeMeta is written out for the type checker; it cannot drift from the registry:
    the same names in the same order, each typed as the key's value loads, its default."""
    fields = dataclasses.fields(meta.RecipeMeta)
    assert [f.name for f in fields] == [k.name for k in meta_keys.KEYS]
    hints = typing.get_type_hints(meta.RecipeMeta)
    defaults = meta.RecipeMeta()
    for key in meta_keys.KEYS:
        assert hints[key.name] == _as_loaded(key.annotation), key.name
        assert getattr(defaults, key.name) == key.default, key.name
        assert type(getattr(defaults, key.name)) is type(key.default), key.name
    assert dataclasses.is_dataclass(meta.RecipeMeta)
    assert meta.RecipeMeta.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_registry_is_well_formed() -> None:
    names = [k.name for k in meta_keys.KEYS]
    assert len(names) == len(set(names))
    for key in meta_keys.KEYS:
        assert key.name.isupper(), key
        assert key.doc.strip(), key
        assert key.type is not None or key.hook_params is not None, key


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def pre_instal(ctx):\n    pass\n",
            r"unknown hook pre_instal \(did you mean pre_install\?\)",
        ),
        (
            "def pre_backup(ctx, extra):\n    pass\n",
            r"ops.py:1: pre_backup must take \(ctx\), but takes \(ctx, extra\)",
        ),
        ("def pre_restore(ctx)\n    pass\n", r"ops.py:1: syntax error"),
        ("import os\nos.environ['X']\n", r"ops.py:2: KeyError while executing"),
    ],
)
def test_bad_ops_py(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "ops.py").write_text(source)
    with pytest.raises(MetaError, match=message):
        meta.load_ops(tmp_path)


def test_ops_py_hooks_load_and_helpers_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "ops.py").write_text(
        "def helper(x):\n    return x\n\ndef pre_install(ctx):\n    helper(ctx)\n"
    )
    assert list(meta.load_ops(tmp_path)) == ["pre_install"]
    assert meta.load_ops(tmp_path / "missing-dir-is-fine") == {}
