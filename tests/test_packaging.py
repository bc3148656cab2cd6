"""A wheel built from this checkout runs anywhere: installed into a fresh virtual environment and
started from another folder, it finds its templates, static files, bundled decks and migrations,
and keeps its data in the user's data folder. Nothing here needs a network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest
from platformdirs import user_data_dir

from flashapp.paths import (
    bundled_decks_folder,
    instance_folder,
    source_checkout,
    templates_folder,
)

REPO = Path(__file__).resolve().parent.parent

# What a build must not see: other environments, local data, caches and earlier build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "instance", "build", "dist", "*.egg-info", "__pycache__",
    ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache", "screenshots", "node_modules",
    "tests", "bench",
)


def _clean_environment(**extra: str) -> dict[str, str]:
    """The environment of a user who has only the installed app: no checkout on the path, no settings."""
    environment = {key: value for key, value in os.environ.items()
                   if key != "PYTHONPATH" and not key.startswith("FLASHAPP_")}
    environment.update(extra)
    return environment


def _run(command: list[str | Path], *, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run([str(part) for part in command], check=False, cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the checkout, so the build leaves nothing in the checkout."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    out = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--quiet", "-w", out, source], cwd=work, env=_clean_environment())
    (built,) = out.glob("flashapp-*.whl")
    return built


def test_the_wheel_carries_templates_static_files_decks_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "flashapp/templates/register.html",
        "flashapp/templates/teach/dashboard.html",
        "flashapp/static/style.css",
        "flashapp/static/study.js",
        "flashapp/decks/back-muscles.yaml",
        "flashapp/decks/README.md",
        "flashapp/migrations/alembic.ini",
        "flashapp/migrations/script.py.mako",
        "flashapp/migrations/env.py",
        "flashapp/migrations/versions/0001_initial_schema.py",
    }
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    checkout_files = {
        "flashapp/templates/" + path.relative_to(REPO / "templates").as_posix()
        for path in (REPO / "templates").rglob("*.html")
    } | {
        "flashapp/migrations/versions/" + path.name
        for path in (REPO / "flashapp" / "migrations" / "versions").glob("*.py")
    }
    assert checkout_files <= names, f"missing from the wheel: {sorted(checkout_files - names)}"


def test_the_wheel_carries_every_module_of_the_package(wheel):
    """A subpackage missing from pyproject.toml's package list would be left out silently."""
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "flashapp").rglob("*.py")
               if "__pycache__" not in path.parts}
    assert modules <= names, f"add their packages to pyproject.toml: {sorted(modules - names)}"


def test_the_installed_wheel_runs_from_another_folder(wheel, tmp_path, monkeypatch):
    environment_dir = tmp_path / "env"
    venv.create(environment_dir, with_pip=False)
    python = environment_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    flashapp_command = environment_dir / ("Scripts/flashapp.exe" if os.name == "nt" else "bin/flashapp")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    data_home = tmp_path / "data"
    env = _clean_environment(HOME=str(home), USERPROFILE=str(home), XDG_DATA_HOME=str(data_home))

    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--quiet", wheel], cwd=elsewhere, env=env)
    # The dependencies come from the environment running these tests. A folder named in a .pth
    # file is only put on the path (its own .pth files are not run), so an editable install of
    # the checkout living there cannot take the place of the installed wheel.
    new_site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  cwd=elsewhere, env=env).strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (new_site_packages / "test_dependencies.pth").write_text("\n".join(ours) + "\n")
    # Where the app would be imported from, found without importing it (that took a second and a half), before
    # `flashapp init` may write anything; the script below imports it and says where it came from.
    found_at = Path(_run([python, "-c", "import importlib.util; print(importlib.util.find_spec('flashapp').origin)"],
                         cwd=elsewhere, env=env).strip())
    assert found_at == new_site_packages / "flashapp" / "__init__.py"

    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    data_folder = Path(user_data_dir("flashapp", appauthor=False))
    assert tmp_path in data_folder.parents, "the test must not write into the real user's data folder"

    output = _run([flashapp_command, "init"], cwd=elsewhere, env=env)
    assert f"Instance folder: {data_folder}" in output.splitlines()
    assert "back-muscles: 75 notes added" in output
    assert (data_folder / "flashapp.sqlite").is_file()

    script = textwrap.dedent("""
        import json
        import flashapp
        from flashapp import create_app, db
        from flashapp.models import Deck

        app = create_app()
        client = app.test_client()
        register = client.get("/register")
        style = client.get("/static/style.css")
        with app.app_context():
            decks = list(db.session.scalars(db.select(Deck.slug)))
        print(json.dumps({
            "register": register.status_code,
            "register_form": '<form method="post"' in register.text and 'name="password"' in register.text,
            "style": style.status_code,
            "style_rule": b"{" in style.data,
            "decks": decks,
            "instance": app.instance_path,
            "imported_from": flashapp.__file__,
        }))
    """)
    seen = json.loads(_run([python, "-c", script], cwd=elsewhere, env=env))
    imported_from = Path(seen.pop("imported_from"))
    assert imported_from == new_site_packages / "flashapp" / "__init__.py"
    assert seen == {"register": 200, "register_form": True, "style": 200, "style_rule": True,
                    "decks": ["back-muscles"], "instance": str(data_folder)}

    expected_version = "flashapp " + wheel.name.split("-")[1]
    assert _run([flashapp_command, "--version"], cwd=elsewhere, env=env).strip() == expected_version
    assert _run([python, "-m", "flashapp", "--version"], cwd=elsewhere, env=env).strip() == expected_version
    assert not (elsewhere / "instance").exists(), "an installed app keeps no data in the current folder"


def test_from_a_checkout_the_app_uses_the_checkout_folders():
    assert source_checkout() == REPO
    assert templates_folder() == REPO / "templates"
    assert bundled_decks_folder() == REPO / "decks"
    assert instance_folder(override=None) == REPO / "instance"


def test_flashapp_instance_path_wins_over_the_default(tmp_path):
    assert instance_folder(override=str(tmp_path / "data")) == tmp_path / "data"
    assert instance_folder(override="") == REPO / "instance"
