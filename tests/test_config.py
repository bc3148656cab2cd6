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
