"""The server's leaf certificate of a TLS handshake: subject, issuer, self-signed; parsed once
per distinct certificate (a small cache by digest)."""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict

CERT_CACHE = 256                # parsed leaf certificates remembered, by DER


def leaf_der(msg: bytes) -> bytes | None:
    """The first certificate of a (TLS 1.0-1.2) Certificate message."""
    if len(msg) < 6:
        return None
    ln = (msg[3] << 16) | (msg[4] << 8) | msg[5]
    if ln == 0 or 6 + ln > len(msg):
        return None
    return msg[6 : 6 + ln]


def cert_facts(der: bytes) -> tuple[str | None, str | None, bool | None]:
    """(subject, issuer, self-signed) of a DER certificate; (None, None, None) if unparsable.

    Self-signed means issuer == subject and the signature verifies with the certificate's own
    public key; any key or signature type cryptography cannot check counts as not self-signed.
    """
    from cryptography import x509  # here: ~25 ms of start-up for the runs with no certificate

    try:
        # cryptography warns (UserWarning, with its source path) about names longer than X.520
        # allows; from the wire that is data, not a programming error: never on stderr or the log
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(der)
            subject = cert.subject.rfc4514_string()
            issuer = cert.issuer.rfc4514_string()
            same = cert.issuer == cert.subject
    except Exception:  # noqa: BLE001 - hostile bytes: any parse failure means "unknown"
        return None, None, None
    signed = False
    if same:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cert.verify_directly_issued_by(cert)
            signed = True
        except Exception:  # noqa: BLE001 - bad signature, unsupported key or algorithm
            signed = False
    return subject, issuer, signed


def cert_cached(der: bytes, state: dict) -> tuple[str | None, str | None, bool | None]:
    cache: OrderedDict = state.setdefault("certs", OrderedDict())
    key = hashlib.sha1(der).digest()
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    facts = cert_facts(der)
    cache[key] = facts
    if len(cache) > CERT_CACHE:
        cache.popitem(last=False)
    return facts
