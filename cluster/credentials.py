"""Credentials for a cross-silo federation: a CA, the SuperLink's TLS certificate, and one key pair per silo.

For tests and first deployments; an organisation with its own PKI uses its own certificates instead. The server
certificate is valid for the host names and addresses given (``localhost`` and 127.0.0.1 by default), which is what
a SuperNode checks. Silo keys are NIST P-384 EC keys in OpenSSH format, the kind Flower's SuperNode authentication
accepts: the private key stays with the silo (``silo<k>.key``), the public key goes to the server operator
(``silo<k>.pub``), who registers it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_credentials(out: str | Path, silos: int, hosts: list[str] | None = None) -> Path:
    """Write ``ca.crt``, ``server.pem``, ``server.key`` and ``silo<k>.key`` / ``silo<k>.pub`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    valid = {"not_valid_before": now - dt.timedelta(minutes=5), "not_valid_after": now + dt.timedelta(days=VALID_DAYS)}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedray federation CA")])
    ca = (
        x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name, public_key=ca_key.public_key(),
                                serial_number=x509.random_serial_number(), **valid)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder(subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedray superlink")]),
                                issuer_name=ca_name, public_key=server_key.public_key(),
                                serial_number=x509.random_serial_number(), **valid)
        .add_extension(_san(hosts or ["localhost", "127.0.0.1"]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem, pkcs8, none = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    (out / "ca.crt").write_bytes(ca.public_bytes(pem))
    (out / "server.pem").write_bytes(server.public_bytes(pem))
    _write_private(out / "server.key", server_key.private_bytes(pem, pkcs8, none))
    for k in range(silos):
        write_silo_key(out, f"silo{k}")
    return out


def write_silo_key(out: Path, name: str) -> tuple[Path, Path]:
    """A P-384 key pair for one silo: ``<name>.key`` (OpenSSH private key) and ``<name>.pub`` (OpenSSH public)."""
    key = ec.generate_private_key(ec.SECP384R1())
    openssh = serialization.Encoding.OpenSSH
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())  # fmt: skip
    public = key.public_key().public_bytes(openssh, serialization.PublicFormat.OpenSSH)
    _write_private(out / f"{name}.key", private)
    (out / f"{name}.pub").write_bytes(public + b"\n")
    return out / f"{name}.key", out / f"{name}.pub"
