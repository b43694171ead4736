"""Configuration: TOML plus KUZET_* variables (env wins), validated; init writes a starter config."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuzet.config import ConfigError, load_settings
from kuzet.installation import Installation


def test_defaults_are_an_embedded_install(tmp_path: Path) -> None:
    settings = load_settings(environ={"KUZET_DATA_DIR": str(tmp_path)})
    assert settings.db_url == f"sqlite:///{tmp_path / 'kuzet.db'}"
    assert settings.recordings_path == tmp_path / "recordings"
    assert settings.events_url == "memory://"


def test_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "kuzet.toml").write_text('default_language = "kk"\n[http]\nport = 9000\n[storage]\nmax_bytes = 5\n')
    settings = load_settings(environ={"KUZET_DATA_DIR": str(tmp_path), "KUZET_HTTP__PORT": "9100"})
    assert settings.http.port == 9100 and settings.default_language == "kk" and settings.storage.max_bytes == 5
    assert load_settings(data=tmp_path, environ={}).http.port == 9000


def test_bad_values_are_named(tmp_path: Path) -> None:
    (tmp_path / "kuzet.toml").write_text("[http]\nport = 99999\n")
    with pytest.raises(ConfigError, match="http.port"):
        load_settings(environ={"KUZET_DATA_DIR": str(tmp_path)})
    (tmp_path / "kuzet.toml").write_text("[http\n")
    with pytest.raises(ConfigError, match="kuzet.toml"):
        load_settings(environ={"KUZET_DATA_DIR": str(tmp_path)})


def test_init_writes_config_keys_schema_and_never_overwrites(tmp_path: Path) -> None:
    inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(tmp_path / "d")}))
    created = inst.init()
    names = {p.name for p in created}
    assert {"kuzet.toml", "secrets.key", "signing.ed25519"} <= names
    text = (tmp_path / "d" / "kuzet.toml").read_text()
    assert text.startswith("# Kuzet configuration") and "KUZET_" in text
    key = (tmp_path / "d" / "keys" / "secrets.key").read_bytes()
    assert inst.init() == []
    assert (tmp_path / "d" / "keys" / "secrets.key").read_bytes() == key
    assert oct((tmp_path / "d" / "keys" / "secrets.key").stat().st_mode & 0o777) == "0o600"
    from kuzet.store.schema import current_revision, head_revision

    assert current_revision(inst.db) == head_revision()


def test_installation_files_are_owner_only_and_loose_ones_are_named(inst: Installation) -> None:
    import stat

    from sqlalchemy import text

    from kuzet.store.db import sqlite_file

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    data = inst.settings.data_dir
    assert mode(data) == 0o700 and mode(inst.keys.dir) == 0o700 and mode(data / "kuzet.toml") == 0o600
    assert all(mode(key) == 0o600 for key in inst.keys.dir.iterdir() if key.suffix != ".pub")
    db_file = sqlite_file(inst.settings.db_url)
    if db_file is not None:
        with inst.db.engine.connect() as conn:  # while a connection is open SQLite keeps its -wal and -shm files
            conn.execute(text("CREATE TABLE IF NOT EXISTS mode_probe (x INTEGER)"))
            conn.commit()
            for name in ("kuzet.db", "kuzet.db-wal", "kuzet.db-shm"):
                assert mode(data / name) == 0o600, name
    assert inst.insecure_files() == []
    (data / "kuzet.toml").chmod(0o644)
    data.chmod(0o755)
    loose = {f.path: f for f in inst.insecure_files()}
    assert set(loose) == {data, data / "kuzet.toml"}
    assert str(loose[data / "kuzet.toml"]).endswith(f"0644; run: chmod 600 {data / 'kuzet.toml'}")
    assert "chmod 700" in str(loose[data])
