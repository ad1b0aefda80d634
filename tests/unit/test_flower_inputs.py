"""``fedray credentials``, ``serve`` and ``join`` check every file, folder, port and override they are given before a
Flower process starts: each mistake is one line naming it, and an existing CA is never overwritten."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from fedray.cluster.cli import main
from fedray.cluster.credentials import make_credentials


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    """A federation's credentials, a second CA's, and a folder of the silos' public keys."""
    root = tmp_path_factory.mktemp("creds")
    make_credentials(root / "ours", silos=1)
    make_credentials(root / "theirs", silos=0)
    (root / "keys").mkdir()
    shutil.copy(root / "ours" / "silo0.pub", root / "keys")
    return root


def _run(capsys, monkeypatch, *argv: str) -> tuple[int, list[str]]:
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # serve/join install a SIGTERM handler; not in pytest
    status = main(list(argv))
    return status, capsys.readouterr().err.strip().splitlines()


def test_credentials_never_overwrite_a_ca(tmp_path, capsys, monkeypatch):
    assert _run(capsys, monkeypatch, "credentials", str(tmp_path / "c"), "--silos", "1")[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}
    status, err = _run(capsys, monkeypatch, "credentials", str(tmp_path / "c"), "--silos", "2")
    assert status == 2 and len(err) == 1 and "already holds ca.crt, server.pem, server.key" in err[0]
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()} == before
    (tmp_path / "file").write_text("")
    status, err = _run(capsys, monkeypatch, "credentials", str(tmp_path / "file" / "c"))
    assert status == 2 and err == [f"fedray: error: credentials folder {tmp_path / 'file' / 'c'}: "
                                   f"{tmp_path / 'file'} is a file, not a folder"]  # fmt: skip


def _broken(creds: Path, tmp_path: Path, name: str, content: bytes | Path) -> Path:
    folder = tmp_path / f"broken-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(creds / "ours", folder)
    (folder / name).write_bytes(content.read_bytes() if isinstance(content, Path) else content)
    return folder


def test_serve_checks_its_credentials_keys_and_home_before_starting(creds, tmp_path, capsys, monkeypatch):
    theirs = creds / "theirs"
    cases = [
        (tmp_path / "none", "keys", f"--credentials {tmp_path / 'none'} is not a folder"),
        (_broken(creds, tmp_path, "ca.crt", b"junk"), "keys", "ca.crt is not a PEM certificate"),
        (_broken(creds, tmp_path, "server.key", b"junk"), "keys", "server.key is not an unencrypted PEM private key"),
        (_broken(creds, tmp_path, "server.pem", theirs / "server.pem"), "keys", "server.pem was not issued by"),
        (_broken(creds, tmp_path, "server.key", theirs / "server.key"), "keys", "server.key is not the key of"),
        (creds / "ours", "none", f"--authorized-keys {creds / 'none'} is not a folder"),
        (creds / "ours", "theirs", f"--authorized-keys {theirs} holds no <silo>.pub files"),
    ]
    for folder, keys, message in cases:
        status, err = _run(capsys, monkeypatch, "serve", "federated", "--credentials", str(folder),
                           "--authorized-keys", str(creds / keys))  # fmt: skip
        assert status == 2 and len(err) == 1 and message in err[0], (message, err)
    bad_keys = tmp_path / "bad-keys"
    bad_keys.mkdir()
    (bad_keys / "evil.pub").write_text("not a key\n")
    home = tmp_path / "home-file"
    home.write_text("")
    for extra, message in (
        ([], "serve with --credentials needs --authorized-keys DIR"),
        (["--authorized-keys", str(bad_keys)], f"{bad_keys / 'evil.pub'} is not an OpenSSH public key"),
        (["--authorized-keys", str(creds / "keys"), "--home", str(home)], f"--home {home}: {home} is a file"),
    ):
        status, err = _run(capsys, monkeypatch, "serve", "federated", "--credentials", str(creds / "ours"), *extra)
        assert status == 2 and len(err) == 1 and message in err[0], (message, err)


def test_join_checks_its_link_key_folder_and_overrides_before_starting(creds, tmp_path, capsys, monkeypatch):
    ca, key = str(creds / "ours" / "ca.crt"), str(creds / "ours" / "silo0.key")
    (tmp_path / "junk.key").write_text("junk")
    (tmp_path / "state").write_text("")
    link = ["join", "--superlink", "127.0.0.1:9", "--client-id", "0"]
    cases = [
        ([*link, "--ca", str(tmp_path / "no.crt")], f"--ca {tmp_path / 'no.crt'} does not exist"),
        ([*link, "--ca", key], f"--ca {key} is not a PEM certificate"),
        ([*link, "--ca", ca, "--key", str(tmp_path / "no.key")], f"--key {tmp_path / 'no.key'} does not exist"),
        ([*link, "--ca", ca, "--key", str(tmp_path / "junk.key")], "is not an unencrypted OpenSSH private key"),
        ([*link, "--ca", ca, "--key", key, "--state-dir", str(tmp_path / "state")], "is a file, not a folder"),
        ([*link, "--ca", ca, "--key", key, "data.bogus=1"], "unknown config key 'data.bogus'"),
        (["join", "--superlink", "http://127.0.0.1:9", "--client-id", "0", "--ca", ca], "(no scheme)"),
    ]
    for argv, message in cases:
        status, err = _run(capsys, monkeypatch, *argv)
        assert status == 2 and len(err) == 1 and message in err[0], (message, err)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["credentials", "x", "--silos", "-1"], "argument --silos: the number of silos is 0 or more, got -1"),
        (["serve", "federated", "--insecure", "--port", "99999"], "argument --port: a port is 1-65535, got 99999"),
        (["join", "--superlink", "h:1", "--client-id", "-1", "--insecure"], "a client id is 0 or more, got -1"),
    ],
)
def test_numbers_out_of_range_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
