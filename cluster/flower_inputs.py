"""Checks of what ``fedray credentials``, ``serve`` and ``join`` are given, before any Flower process starts.

A missing or garbled certificate, key or folder would otherwise surface as a Python traceback from ``ssl``, as a
SuperLink that "exited with status 1", or as a SuperNode restarted for minutes; here each is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from fedray.platform.data.config import OWN_DATA, DataConfig
from fedray.platform.errors import FedrayError

CREDENTIAL_FILES = ("ca.crt", "server.pem", "server.key")
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # a public key, comparable


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise FedrayError(f"{what} {path} does not exist")
    return path.read_bytes()


def certificate(path: Path, what: str) -> x509.Certificate:
    """The PEM certificate in ``path``, or a one-line error naming it."""
    try:
        return x509.load_pem_x509_certificate(_read(path, what))
    except ValueError:
        raise FedrayError(f"{what} {path} is not a PEM certificate") from None


def check_writable_folder(path: Path, what: str) -> Path:
    """``path`` is a folder or can become one (no file in the way)."""
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise FedrayError(f"{what} {path}: {blocker} is a file, not a folder")
    return path


def check_silo_data(cfg: DataConfig) -> None:
    """A silo's own data folder exists before its SuperNode starts (the run's other data keys arrive with the run)."""
    if cfg.name in OWN_DATA and cfg.path is not None and not Path(cfg.path).expanduser().is_dir():
        raise FedrayError(f"data.path={cfg.path} is not a folder on this silo")


def check_new_credentials(out: Path, silos: int) -> None:
    """``credentials OUT`` makes a new CA: it must not overwrite one (silos keyed to the old CA would be locked out)."""
    check_writable_folder(out, "credentials folder")
    names = [*CREDENTIAL_FILES, *(f"silo{k}.{ext}" for k in range(silos) for ext in ("key", "pub"))]
    present = [name for name in names if (out / name).exists()]
    if present:
        raise FedrayError(
            f"{out} already holds {', '.join(present[:3])}{' …' if len(present) > 3 else ''}: a new CA would lock out "
            f"the silos of the old one; choose a new folder (or delete these files)"
        )


def check_server_credentials(folder: Path) -> None:
    """``ca.crt``, ``server.pem`` (issued by that CA) and ``server.key`` (its private key) in ``folder``."""
    if not folder.is_dir():
        raise FedrayError(f"--credentials {folder} is not a folder (make one with `fedray credentials {folder}`)")
    ca = certificate(folder / "ca.crt", "CA certificate")
    server = certificate(folder / "server.pem", "server certificate")
    try:
        server.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise FedrayError(f"{folder / 'server.pem'} was not issued by {folder / 'ca.crt'}") from None
    try:
        key = serialization.load_pem_private_key(_read(folder / "server.key", "server key"), password=None)
    except (ValueError, TypeError):
        raise FedrayError(f"{folder / 'server.key'} is not an unencrypted PEM private key") from None
    if key.public_key().public_bytes(*_SPKI) != server.public_key().public_bytes(*_SPKI):
        raise FedrayError(f"{folder / 'server.key'} is not the key of {folder / 'server.pem'}")


def authorized_keys(folder: Path) -> list[Path]:
    """The silos' ``*.pub`` OpenSSH public keys in ``folder``, each one readable, at least one."""
    if not folder.is_dir():
        raise FedrayError(f"--authorized-keys {folder} is not a folder")
    keys = sorted(folder.glob("*.pub"))
    if not keys:
        raise FedrayError(f"--authorized-keys {folder} holds no <silo>.pub files")
    for path in keys:
        try:
            serialization.load_ssh_public_key(path.read_bytes())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise FedrayError(f"{path} is not an OpenSSH public key") from None
    return keys


def check_silo_key(path: Path) -> None:
    """This silo's OpenSSH private key (``silo<k>.key`` from ``fedray credentials``)."""
    try:
        serialization.load_ssh_private_key(_read(path, "--key"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise FedrayError(f"--key {path} is not an unencrypted OpenSSH private key") from None


def superlink_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of the SuperLink (no scheme)."""
    host, _, number = text.rpartition(":")
    if not host or "/" in host or not number.isdigit() or not 1 <= int(number) <= 65535:
        raise FedrayError(f"--superlink must look like HOST:PORT (no scheme), e.g. 127.0.0.1:9093; got {text!r}")
    return host, int(number)
