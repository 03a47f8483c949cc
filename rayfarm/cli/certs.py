"""`rayfarm tls self-signed DIR`: a studio CA and a server certificate for a LAN, in one step.

Writes ``ca.pem`` (the CA's certificate: give it to nodes and artists), ``ca.key`` (the CA's key, 0600: keep
it on the server's machine, or offline), ``server.pem`` and ``server.key`` (0600) for ``rayfarm server
--tls-cert DIR/server.pem --tls-key DIR/server.key``. Run again with more ``--host``/``--ip`` to issue a new
server certificate from the same CA: nodes and artists keep trusting it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from rayfarm.cli.session import Exit, fail, out

tls_app = typer.Typer(help="Certificates for serving the farm over HTTPS.", no_args_is_help=True)

CA_DAYS = 3650
LOCAL_NAMES = ("localhost",)
LOCAL_ADDRESSES = ("127.0.0.1", "::1")


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600 if private else 0o644)


def names_for(hosts: list[str], addresses: list[str]) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a server certificate lists: this machine's names and loopback, plus
    the ones given (each once, in order). ValueError for an address that is not one."""
    dns: list[str] = []
    for name in [*hosts, socket.gethostname(), socket.getfqdn(), *LOCAL_NAMES]:
        name = name.strip().lower().rstrip(".")
        if name and name not in dns:
            dns.append(name)
    ips: list[str] = []
    for text in [*addresses, *LOCAL_ADDRESSES]:
        try:
            address = str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise ValueError(f"--ip {text!r} is not an IP address; give names with --host.") from None
        if address not in ips:
            ips.append(address)
    return dns, ips


def make_ca(common_name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server(ca_key, ca_cert, dns: list[str], ips: list[str], days: int):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(name) for name in dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else ips[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _load_ca(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        fail(f"The CA in {folder} (ca.pem, ca.key) cannot be used ({exc}); move it away to make a new one.", Exit.ERROR)
    return key, cert


@tls_app.command("self-signed")
def self_signed(folder: Annotated[Path, typer.Argument(help="Folder to write ca.pem, ca.key, server.pem and "
                                                            "server.key into (made owner-only).")],
                host: Annotated[list[str] | None, typer.Option("--host", help="A name nodes and artists use for "
                                                               "the server (repeatable).")] = None,
                ip: Annotated[list[str] | None, typer.Option("--ip", help="An address they use (repeatable).")] = None,
                days: Annotated[int, typer.Option(help="Days the server certificate is valid.", min=1,
                                                  max=3650)] = 825) -> None:
    """Make a studio CA (once) and a server certificate it signs, for the names and addresses given (plus this
    machine's names, localhost, 127.0.0.1 and ::1)."""
    try:
        import cryptography  # noqa: F401 - the server's install has it
    except ImportError:
        fail("Making certificates needs the server's install: pip install 'rayfarm[server]' (or use openssl).",
             Exit.USAGE)
    try:
        dns, ips = names_for(host or [], ip or [])
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (folder / "ca.pem").exists() and (folder / "ca.key").exists():
        ca_key, ca_cert = _load_ca(folder)
        made = "reused the CA"
    else:
        ca_key, ca_cert = make_ca(f"rayfarm studio CA ({socket.gethostname()})")
        _write(folder / "ca.key", _pem_key(ca_key), private=True)
        _write(folder / "ca.pem", _pem_cert(ca_cert), private=False)
        made = "made a new CA"
    key, cert = make_server(ca_key, ca_cert, dns, ips, days)
    _write(folder / "server.key", _pem_key(key), private=True)
    _write(folder / "server.pem", _pem_cert(cert), private=False)
    lines = [f"In {folder}: {made} (ca.pem, ca.key) and a server certificate (server.pem, server.key) valid "
             f"{days} days for {', '.join(dns + ips)}.",
             f"Serve:  rayfarm server --host 0.0.0.0 --tls-cert {folder / 'server.pem'} --tls-key {folder / 'server.key'}",
             f"Trust:  copy {folder / 'ca.pem'} to nodes and artists: --ca-cert FILE or RAYFARM_CA_CERT (rayfarm), "
             f"REQUESTS_CA_BUNDLE (official SDK), or the system's trust store.",
             f"Keep {folder / 'ca.key'} private: whoever has it can make certificates your farm's clients trust."]
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
