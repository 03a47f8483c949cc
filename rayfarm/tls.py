"""Whom a client of the farm trusts over HTTPS: the system's certificate authorities, plus a studio CA.

Nodes, our SDK and the command line check the farm's certificate always (there is no switch to turn the
check off). A farm with a certificate from a public CA needs nothing; a studio CA (for example the one
`rayfarm tls self-signed` makes) is given with ``--ca-cert FILE`` or ``$RAYFARM_CA_CERT``, or installed in
the system's trust store (Debian: copy it to /usr/local/share/ca-certificates/NAME.crt and run
update-ca-certificates). The official SDK (``requests``) reads ``$REQUESTS_CA_BUNDLE`` instead.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from pathlib import Path

CA_ENV = "RAYFARM_CA_CERT"


class TrustError(Exception):
    """The CA certificate given cannot be used (missing, unreadable, not a certificate)."""


def ca_cert_path(ca_cert: str | os.PathLike | None = None) -> str | None:
    """The studio CA file to trust: the argument, else ``$RAYFARM_CA_CERT``, else None (system trust only)."""
    chosen = ca_cert or os.environ.get(CA_ENV) or None
    return str(Path(chosen).expanduser()) if chosen else None


def client_context(ca_cert: str | os.PathLike | None = None) -> ssl.SSLContext:
    """An SSL context that checks certificates and host names against the system's CAs and the studio CA."""
    context = ssl.create_default_context()
    if not context.cert_store_stats().get("x509_ca"):
        try:  # no CA bundle file on this system (its store may be a folder, read lazily): add certifi's too
            import certifi

            context.load_verify_locations(cafile=certifi.where())
        except (ImportError, OSError, ssl.SSLError):
            pass
    path = ca_cert_path(ca_cert)
    if path:
        try:
            context.load_verify_locations(cafile=path)
        except FileNotFoundError:
            raise TrustError(f"The CA certificate {path} does not exist; give the studio CA's file "
                             f"(--ca-cert or ${CA_ENV}), e.g. the ca.pem that `rayfarm tls self-signed` wrote.") from None
        except PermissionError:
            raise TrustError(f"The CA certificate {path} cannot be read by this user; make it readable "
                             f"(a CA certificate is public: chmod 644).") from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise TrustError(f"{path} is not a PEM CA certificate ({exc}); give the studio CA's certificate "
                             f"file (ca.pem), not a key.") from None
    return context


def verify_for(url: str, ca_cert: str | os.PathLike | None = None) -> ssl.SSLContext | bool:
    """What to pass as httpx's ``verify=`` for ``url``: a checking context for https, True otherwise."""
    return client_context(ca_cert) if url.lower().startswith("https:") else True


def certificate_problem(exc: BaseException) -> str | None:
    """A sentence saying what to do when ``exc`` (or what caused it) is a failed certificate check, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    reason = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            reason = current.verify_message or str(current)
            break
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            reason = str(current).rpartition("certificate verify failed: ")[2].split(" (_ssl")[0] or str(current)
            break
        current = current.__cause__ or current.__context__
    if reason is None:
        return None
    if "mismatch" in reason or "doesn't match" in reason or "not valid for" in reason:
        return (f"The farm's certificate does not name the address used here ({reason}); connect with a name "
                f"or address the certificate lists, or make one that lists it (rayfarm tls self-signed DIR "
                f"--host NAME --ip ADDRESS).")
    return (f"The farm's certificate is not trusted here ({reason}): give the studio CA's certificate with "
            f"--ca-cert FILE or ${CA_ENV} (the official SDK: $REQUESTS_CA_BUNDLE), or install it in this "
            f"system's trust store.")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
