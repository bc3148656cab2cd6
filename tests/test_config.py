"""Configuration: the secret key, the database URL and the instance folder."""

from __future__ import annotations

import pytest

from flashapp import create_app


def test_a_secret_key_is_generated_once_per_install_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASHAPP_SECRET_KEY", raising=False)
    monkeypatch.setenv("FLASHAPP_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("FLASHAPP_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "inst" / "secret_key").read_text() == first
    assert (tmp_path / "inst" / "secret_key").stat().st_mode & 0o077 == 0


def test_other_installs_get_other_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASHAPP_SECRET_KEY", raising=False)
    keys = set()
    for name in ("a", "b"):
        monkeypatch.setenv("FLASHAPP_INSTANCE_PATH", str(tmp_path / name))
        keys.add(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["SECRET_KEY"])
    assert len(keys) == 2


@pytest.mark.parametrize("key", ["dev", "changeme", "short"])
def test_a_well_known_or_short_secret_key_is_refused(tmp_path, monkeypatch, key):
    monkeypatch.setenv("FLASHAPP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("FLASHAPP_SECRET_KEY", key)
    with pytest.raises(RuntimeError, match="FLASHAPP_SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_the_database_url_comes_from_the_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    monkeypatch.setenv("FLASHAPP_INSTANCE_PATH", str(tmp_path / "inst"))
    monkeypatch.setenv("FLASHAPP_DATABASE_URL", url)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == url
    assert app.instance_path == str(tmp_path / "inst")
    assert app.debug is False


def test_new_passwords_are_hashed_with_scrypt_unless_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASHAPP_INSTANCE_PATH", str(tmp_path / "inst"))
    assert create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}).config["PASSWORD_HASH_METHOD"] == "scrypt"


def test_the_url_builders_the_test_run_compiles_once_build_what_werkzeugs_own_build(app, tmp_path):
    """The tests share each route's URL builder between their apps (conftest): a second app's builders
    give every URL, with and without extra query arguments, as builders werkzeug compiles afresh."""
    from werkzeug.routing import IntegerConverter
    from werkzeug.routing.rules import Rule

    from flashapp import create_app

    compile_afresh = Rule._compile_builder.__wrapped__
    other = create_app({"INSTANCE_PATH": str(tmp_path / "other"), "SECRET_KEY": "another-test-key-" + "y" * 32,
                        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/other.sqlite"})
    compared = 0
    for rule in other.url_map.iter_rules():
        if rule.defaults:
            continue
        values = {name: 7 + number if isinstance(rule._converters[name], IntegerConverter) else f"v{number}-é/"
                  for number, name in enumerate(sorted(rule.arguments))}
        for unknown, extra in ((False, {}), (True, {"page": "2", "q": "a b"})):
            shared = (rule._build_unknown if unknown else rule._build)(**values, **extra)
            afresh = compile_afresh(rule, unknown).__get__(rule, None)(**values, **extra)
            assert shared == afresh, rule.rule
            compared += 1
    assert compared >= 2 * 40  # every route of the app, twice
