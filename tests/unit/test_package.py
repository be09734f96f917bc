"""Package-level promises: the error tree, the inert plugin, the console script."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import cli, errors


def test_error_all_is_complete_and_rooted() -> None:
    public = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type)
        and issubclass(obj, Exception)
        and obj.__module__ == errors.__name__
    }
    assert {n for n in errors.__all__ if isinstance(getattr(errors, n), type)} == public
    for name in public:
        assert issubclass(getattr(errors, name), errors.CcciError)
        assert name in errors.__doc__, f"{name} missing from the tree drawn in the docstring"


def test_failure_kinds() -> None:
    assert errors.MetaError.kind == errors.ConvergeError.kind == errors.DeployError.kind == "recipe"
    assert errors.PlatformError.kind == errors.EngineError.kind == "infra"


def test_pytest_help_does_not_touch_docker() -> None:
    # An unreachable engine proves nothing connects; the module check proves nothing imports.
    code = textwrap.dedent("""
        import sys, pytest
        rc = pytest.main(["--help"])
        assert rc == 0, rc
        heavy = sorted(m for m in ("docker", "playwright", "httpx") if m in sys.modules)
        assert not heavy, heavy
    """)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DOCKER_HOST": "tcp://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr


def test_unreachable_engine_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    recipe = tmp_path / "recipes" / "web"
    recipe.mkdir(parents=True)
    (recipe / "recipe_meta.py").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(recipe)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"DOCKER_HOST": "tcp://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert "cc-ci: Docker engine not reachable at tcp://127.0.0.1:9" in done.stderr


def test_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.mkdir("web").joinpath("recipe_meta.py").write_text("")
    result = pytester.runpytest_subprocess("--co", "web")
    result.stdout.fnmatch_lines(["cc-ci platform: local; catalogue: *", "*<TierItem install>*"])


def test_a_session_without_recipe_dirs_imports_nothing_of_cc_ci(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_modules():
            loaded = sorted(m for m in sys.modules if m.startswith("harness"))
            settings = ["harness", "harness.config", "harness.plugin", "harness.settings"]
            assert loaded == settings, loaded
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "cc-ci platform" not in result.stdout.str()
    assert "e2e" not in result.stdout.str()


def test_cli_meta_reports_valid_and_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "recipe_meta.py").write_text("HEALTH_PATH = '/health'\n")
    assert cli.main(["meta", str(tmp_path)]) == 0
    assert "HEALTH_PATH = '/health'" in capsys.readouterr().out
    (tmp_path / "recipe_meta.py").write_text("HEALTH_PAHT = '/health'\n")
    assert cli.main(["meta", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cc-ci: error: ")
    assert "did you mean HEALTH_PATH?" in err


def test_cli_lint_exit_code_follows_error_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = tmp_path / "r"
    recipe.mkdir()
    (recipe / "compose.yml").write_text("version: '3.8'\nservices:\n  web:\n    image: x:1.0\n")
    assert cli.main(["lint", str(recipe)]) == 1  # no .env.sample, no app, no traefik
    out = capsys.readouterr().out
    assert "lint: fail (errors: R008, R009, R010, R016)" in out
    assert cli.main(["lint", str(tmp_path / "none")]) == 1
    assert "not a recipe checkout" in capsys.readouterr().err


def test_cli_compare_refuses_what_it_cannot_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.reports.results import Results

    for name, recipe in (("a-1", "alpha"), ("b-1", "beta")):
        (tmp_path / name).mkdir()
        Results(tmp_path / name / "results.json", recipe, "a1b2c3").save()
    assert cli.main(["compare", str(tmp_path / "a-1"), str(tmp_path / "b-1")]) == 1
    assert "runs of different recipes: alpha, beta" in capsys.readouterr().err
    assert cli.main(["compare", str(tmp_path / "a-1")]) == 1
    assert "no earlier run of alpha" in capsys.readouterr().err


def test_cc_ci_run_takes_the_harness_options_directly(tmp_path: Path) -> None:
    recipe = tmp_path / "recipes" / "web"
    recipe.mkdir(parents=True)
    (recipe / "recipe_meta.py").write_text("")
    cc_ci = [sys.executable, "-m", "harness.cli", "run", "web"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cc_ci, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

    bad = run("--tiers", "bogus")
    assert "--tiers: unknown tier(s) bogus" in bad.stdout + bad.stderr
    selected = run("--tiers", "install", "--", "--collect-only", "-q")
    assert "2/5 tests collected (3 deselected)" in selected.stdout, selected.stdout
    assert run("--", "--collect-only", "-q").stdout.count("web::") == 5  # after --: pytest's
