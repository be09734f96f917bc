"""The install and upgrade tiers on the real swarm, on small synthetic recipes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import WEB_APP, Workspace

pytestmark = pytest.mark.e2e


def with_one_shot(compose: str) -> str:
    """Add a one-shot service that finishes at once (restart_policy none)."""
    return compose.replace(
        "networks:\n  proxy:",
        "  init:\n"
        "    image: cc-ci/busybox:bookworm\n"
        '    command: ["sh", "-c", "echo migrated"]\n'
        "    deploy:\n"
        "      restart_policy:\n"
        "        condition: none\n"
        "networks:\n  proxy:",
    )


def test_install_and_upgrade_pass_and_leave_nothing(workspace: Workspace) -> None:
    workspace.recipe("web", [("1.0.0+1", WEB_APP), ("1.1.0+1", with_one_shot(WEB_APP))])
    session = workspace.pytest("recipes/web")
    assert session.tier_outcomes == {
        "recipes/web::install": "PASSED",
        "recipes/web::upgrade": "PASSED",
        "recipes/web::backup": "SKIPPED",  # no backup labels: unverified, loudly
        "recipes/web::restore": "SKIPPED",
    }, session.output
    assert "possible coverage gap: backup_restore" in session.output
    session.assert_nothing_left()
    (run_dir,) = session.runs_dir.iterdir()
    deployed = sorted(p.name for p in run_dir.glob("deploy-*.yml"))
    assert len(deployed) == 3  # install; upgrade: base, then candidate
    platform = json.loads((run_dir / "results.json").read_text())["platform"]
    assert platform["name"] == "local"
    assert any("published in host mode on 127.0.0.1:" in o for o in platform["overlays"])


def test_completed_one_shot_does_not_block_convergence(workspace: Workspace) -> None:
    workspace.recipe("oneshot", [("1.0.0+1", with_one_shot(WEB_APP))])
    session = workspace.pytest("recipes/oneshot", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/oneshot::install": "PASSED"}, session.output
    assert "3 deselected" in session.output  # upgrade, backup, restore (lint always runs)


def test_tier_ids_selection_and_unverifiable_upgrade(workspace: Workspace) -> None:
    workspace.recipe("untagged", [("v2.4.8", WEB_APP)])  # a lightweight, non-semver tag
    listed = subprocess.run(
        [*workspace.argv("recipes/untagged", "--co", "-qq")],
        cwd=workspace.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert listed[:2] == ["recipes/untagged::install", "recipes/untagged::upgrade"]
    session = workspace.pytest("recipes/untagged", "-k", "upgrade")
    assert session.tier_outcomes == {"recipes/untagged::upgrade": "SKIPPED"}, session.output
    assert "n/a: no release tags of the form <semver>+<upstream> (tags found: v2.4.8)" in (
        session.output
    )
    unknown = workspace.pytest("recipes/untagged", "--tiers", "instal")
    assert unknown.returncode == 4
    assert "--tiers: unknown tier(s) instal" in unknown.output


def test_cc_ci_run_on_a_repo_without_recipe_dir_uses_defaults(workspace: Workspace) -> None:
    workspace.recipe("adhoc", [("1.0.0+1", WEB_APP)])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(workspace.catalogue / "adhoc"),
            "--",
            "-v",
            "-p",
            "no:cacheprovider",
            "--runs-dir",
            str(workspace.runs_dir),
        ],
        cwd=workspace.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adhoc::install PASSED" in done.stdout
    assert "adhoc::upgrade SKIPPED" in done.stdout  # one release: nothing to upgrade from


def test_crash_after_converging_is_a_crash_loop_not_a_probe_timeout(workspace: Workspace) -> None:
    # Up long enough to count as running, then dead: the probes must notice the crash loop.
    late_crash = WEB_APP.replace(
        "mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www",
        "\"sleep 2; echo 'late: lost the database connection' >&2; exit 1\"",
    )
    workspace.recipe("late", [("1.0.0+1", late_crash)])
    session = workspace.pytest("recipes/late", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/late::install": "FAILED"}, session.output
    assert "is crash-looping" in session.output
    assert "late: lost the database connection" in session.output
    assert "health: GET" not in session.output
    session.assert_nothing_left()


def test_custom_tests_run_against_the_live_app_and_failures_carry_its_logs(
    workspace: Workspace,
) -> None:
    recipe_dir = workspace.recipe("custom", [("1.0.0+1", WEB_APP)])
    (recipe_dir / "functional").mkdir()
    (recipe_dir / "functional" / "test_app.py").write_text(
        "def test_serves_ok(app, meta):\n"
        "    assert app.get('/').text == 'ok\\n'\n"
        "    assert meta.HEALTH_PATH == '/'\n"
        "\n"
        "def test_fails_on_purpose(app):\n"
        "    assert app.get('/missing').status_code == 200\n"
        "\n"
        "def test_reads_what_the_tiers_did(app, op_state):\n"
        "    assert op_state['install']['app'] == app.app\n"
        "    assert op_state['install']['stamps']['recipe'] == 'custom'\n"
    )
    (recipe_dir / "test_top_level.py").write_text("def test_never_collected(): pass\n")
    session = workspace.pytest("recipes/custom")
    outcomes = session.outcomes
    assert outcomes["recipes/custom/functional/test_app.py::test_serves_ok"] == "PASSED"
    assert outcomes["recipes/custom/functional/test_app.py::test_fails_on_purpose"] == "FAILED"
    assert outcomes["recipes/custom/functional/test_app.py::test_reads_what_the_tiers_did"] == (
        "PASSED"
    )
    assert not any("test_top_level" in nodeid for nodeid in outcomes)
    assert "cc-ci: app logs" in session.output
    (doc,) = session.results()
    assert doc["rungs"]["custom"]["status"] == "fail"
    assert "test_fails_on_purpose" in doc["rungs"]["custom"]["reason"]
    assert doc["customization"]["custom_tests"] == ["functional/test_app.py"]
    session.assert_nothing_left()


def test_recipe_dir_hooks_overlay_and_install_steps(workspace: Workspace) -> None:
    recipe_dir = workspace.recipe("hooked", [("1.0.0+1", WEB_APP)])
    # install_steps.sh runs in the app's checkout with its env, before the overlay exists.
    (recipe_dir / "install_steps.sh").write_text(
        'test ! -e compose.ccci.yml && echo "$DOMAIN" >steps-ran.txt\n'
    )
    # compose.ccci.yml is appended to COMPOSE_FILE: the deploy becomes chaos (+U, dirty).
    (recipe_dir / "compose.ccci.yml").write_text(
        'version: "3.8"\nservices:\n  app:\n    environment:\n      - FROM_OVERLAY=yes\n'
    )
    (recipe_dir / "ops.py").write_text(
        "def pre_install(ctx):\n    ctx.exec('app', ['sh', '-c', 'echo hooked >/www/hooked'])\n"
    )
    (recipe_dir / "functional").mkdir()
    (recipe_dir / "functional" / "test_hooks.py").write_text(
        "def test_pre_install_and_overlay_took_effect(app):\n"
        "    assert app.get('/hooked').text == 'hooked\\n'\n"
        "    assert app.exec('app', ['sh', '-c', 'echo $FROM_OVERLAY']).stdout == 'yes\\n'\n"
    )
    session = workspace.pytest("recipes/hooked")
    assert session.outcomes["recipes/hooked::install"] == "PASSED", session.output
    assert (
        session.outcomes[
            "recipes/hooked/functional/test_hooks.py::test_pre_install_and_overlay_took_effect"
        ]
        == "PASSED"
    ), session.output
    (doc,) = session.results()
    (stamps,) = doc["stamps"].values()
    assert stamps["chaos"] == "true"
    assert stamps["chaos-version"].endswith("+U")
    assert doc["customization"]["overlays"] == ["compose.ccci.yml"]
    assert doc["customization"]["hooks"] == ["ops.py:pre_install", "install_steps.sh"]
    (run_dir,) = workspace.runs_dir.iterdir()
    (checkout,) = run_dir.glob("app-install-*")
    assert (checkout / "steps-ran.txt").read_text().endswith(".localhost\n")
    assert not (run_dir / "candidate" / "compose.ccci.yml").exists()  # lint's tree is pristine


def test_a_raising_hook_fails_its_tier_with_file_and_line(workspace: Workspace) -> None:
    recipe_dir = workspace.recipe("raising", [("1.0.0+1", WEB_APP)])
    (recipe_dir / "ops.py").write_text(
        "def pre_install(ctx):\n    raise RuntimeError('no bucket')\n"
    )
    session = workspace.pytest("recipes/raising", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/raising::install": "FAILED"}, session.output
    assert "pre_install raised at " in session.output
    assert "ops.py:2: RuntimeError: no bucket" in session.output
    session.assert_nothing_left()


def test_a_worker_that_dies_after_its_first_green_turns_red(workspace: Workspace) -> None:
    # No healthcheck, no web service: converged after MIN_UPTIME, then dead a few seconds
    # later, every time. Nothing probes it; the install must still not pass.
    worker = (
        'version: "3.8"\n'
        "services:\n"
        "  app:\n"
        "    image: cc-ci/busybox:bookworm\n"
        '    command: ["sh", "-c", "sleep 3; echo \'worker: lost the queue\' >&2; exit 1"]\n'
        "    deploy:\n"
        "      labels:\n"
        '        - "coop-cloud.${STACK_NAME}.version=@VERSION@"\n'
    )
    workspace.recipe("worker", [("1.0.0+1", worker)])
    session = workspace.pytest("recipes/worker", "--tiers", "install")
    assert session.tier_outcomes == {"recipes/worker::install": "FAILED"}, session.output
    assert "is crash-looping" in session.output
    assert "worker: lost the queue" in session.output
    session.assert_nothing_left()


def test_custom_tests_of_two_recipes_with_one_basename_do_not_collide(
    workspace: Workspace,
) -> None:
    # The workspace's pytest.ini sets no --import-mode: pytest's default (prepend) would
    # import both as the module "test_app".
    for name in ("alpha", "beta"):
        recipe_dir = workspace.recipe(name, [("1.0.0+1", WEB_APP)])
        (recipe_dir / "functional").mkdir()
        (recipe_dir / "functional" / "test_app.py").write_text(
            f"def test_{name}(app):\n    assert app.recipe == {name!r}\n"
        )
    listed = subprocess.run(
        [*workspace.argv("recipes/alpha", "recipes/beta", "--co", "-qq")],
        cwd=workspace.root,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "recipes/alpha/functional/test_app.py::test_alpha" in listed.stdout
    assert "recipes/beta/functional/test_app.py::test_beta" in listed.stdout
    assert "import file mismatch" not in listed.stdout + listed.stderr


def test_a_version_label_on_another_service_is_where_the_stamp_check_reads_it(
    workspace: Workspace,
) -> None:
    """The release's version label on a second service (not app): install and the upgrade
    from the previous release check it there."""
    sidecar = (
        "  sidecar:\n"
        "    image: cc-ci/busybox:bookworm\n"
        "    command: [sleep, '3600']\n"
        "    deploy:\n"
        "      labels:\n"
        '        - "coop-cloud.${STACK_NAME}.version=@VERSION@"\n'
        "networks:\n"
    )
    compose = WEB_APP.replace('        - "coop-cloud.${STACK_NAME}.version=@VERSION@"\n', "")
    compose = compose.replace("networks:\n  proxy:", sidecar + "  proxy:", 1)
    workspace.recipe("sidecar", [("1.0.0+1", compose), ("1.1.0+1", compose)])
    session = workspace.pytest("recipes/sidecar", "--tiers", "install,upgrade")
    assert session.tier_outcomes == {
        "recipes/sidecar::install": "PASSED",
        "recipes/sidecar::upgrade": "PASSED",
    }, session.output
    [doc] = session.results()
    # Read from the sidecar (app has no version label): the base's 1.0.0+1 was checked too,
    # or the upgrade would have failed its stamp check.
    assert [s.get("version") for s in doc["stamps"].values()] == ["1.1.0+1", "1.1.0+1"]
    session.assert_nothing_left()


def test_the_pull_policy_fails_fast_where_no_registry_answers(workspace: Workspace) -> None:
    """An image that is not here: the default policy (missing) tries the registry, which
    this machine cannot reach — an infra failure naming the image, in seconds; --pull
    never says so at once; an image built here is used as it is, even with --pull always."""
    elsewhere = WEB_APP.replace("cc-ci/busybox:bookworm", "registry.invalid/nobody/app:1.0")
    workspace.recipe("elsewhere", [("1.0.0+1", elsewhere)])
    workspace.recipe("here", [("1.0.0+1", WEB_APP)])
    started = time.monotonic()
    session = workspace.pytest("recipes/elsewhere", "--tiers", "install")
    took = time.monotonic() - started
    [doc] = session.results()
    install = doc["tiers"]["install"]
    assert install["failure_class"] == "infra", install
    assert install["reason"].startswith(
        "EngineError: image registry.invalid/nobody/app:1.0 (service app) cannot be pulled: "
    ), install
    assert "\n" not in install["reason"]
    assert took < 30, took  # the session's own start-up and teardown included
    never = workspace.pytest("recipes/elsewhere", "--tiers", "install", "--pull", "never")
    reason = never.results()[-1]["tiers"]["install"]["reason"]
    assert "is not present locally, and --pull never pulls nothing" in reason
    built_here = workspace.pytest("recipes/here", "--tiers", "install", "--pull", "always")
    assert built_here.tier_outcomes == {"recipes/here::install": "PASSED"}, built_here.output
    session.assert_nothing_left()
