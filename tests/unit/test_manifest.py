"""The customization manifest: built from the loaded meta, secret-shaped names redacted."""

from __future__ import annotations

from pathlib import Path

from harness.recipe import customization, manifest


def test_redaction_is_recursive_and_by_name() -> None:
    data = {
        "EXTRA_ENV": {
            "SECRET_KEY_BASE": "abc",
            "ADMIN_PASSWORD": "hunter2",
            "API_KEY": "k",
            "KEYCLOAK_URL": "https://id.example",  # KEY is a word segment only in API_KEY
            "SMTP": {"AUTH_TOKEN": "t", "HOST": "mail"},
        },
        "CREDENTIALS": ["a", "b"],
        "plain": ["x", {"db_password": "p"}],
    }
    assert manifest.redact(data) == {
        "EXTRA_ENV": {
            "SECRET_KEY_BASE": "***",
            "ADMIN_PASSWORD": "***",
            "API_KEY": "***",
            "KEYCLOAK_URL": "https://id.example",
            "SMTP": {"AUTH_TOKEN": "***", "HOST": "mail"},
        },
        "CREDENTIALS": "***",
        "plain": ["x", {"db_password": "***"}],
    }


def test_manifest_is_built_from_the_loaded_meta(tmp_path: Path) -> None:
    (tmp_path / "recipe_meta.py").write_text(
        "EXTRA_ENV = {'DB_PASSWORD': 'x', 'SITE': 'demo'}\ndef READY_PROBE(ctx):\n    return True\n"
    )
    for test in (
        "functional/test_api.py",
        "playwright/test_ui.py",
        "test_top_level.py",
        "functional/deeper/test_nested.py",
    ):
        (tmp_path / test).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / test).write_text("def test_x(): pass\n")
    (tmp_path / "ops.py").write_text("def pre_install(ctx):\n    pass\n")
    (tmp_path / "install_steps.sh").write_text("true\n")
    (tmp_path / "compose.ccci.yml").write_text("version: '3.8'\n")
    built = manifest.build(
        customization.read(tmp_path), environ={"CCCI_REF": "pull/3", "HOME": "/r"}
    )
    assert built["overlays"] == ["compose.ccci.yml"]
    # Discovery is not recursive, and a top-level test_*.py is no custom test.
    assert built["custom_tests"] == ["functional/test_api.py", "playwright/test_ui.py"]
    assert built["meta_non_default"]["EXTRA_ENV"] == {"DB_PASSWORD": "***", "SITE": "demo"}
    assert built["meta_non_default"]["READY_PROBE"].startswith("hook READY_PROBE(ctx) at ")
    assert built["hooks"] == ["READY_PROBE", "ops.py:pre_install", "install_steps.sh"]
    assert built["env_overrides"] == {"CCCI_REF": "pull/3"}
    text = manifest.render("demo", built)
    assert text.splitlines()[0] == "cc-ci customization of demo:"
    assert "EXTRA_ENV = {'DB_PASSWORD': '***', 'SITE': 'demo'}" in text
    assert "'x'" not in text
