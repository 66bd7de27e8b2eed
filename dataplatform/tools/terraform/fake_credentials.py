"""Throwaway Google service-account credentials for offline `terraform plan`.

The key is a real, freshly generated 2048-bit RSA key (PKCS#8 PEM), so every
credential parser in the provider accepts it; it is never registered anywhere,
never written inside the repository, and deleted after the run.  Uses the
`cryptography` package when it is installed and otherwise generates the key
in pure Python (Miller-Rabin primes, DER by hand), so it needs nothing beyond
the standard library.
"""
from __future__ import annotations

import base64
import json
import secrets

_E = 65537
# Small primes for trial division before Miller-Rabin.
_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]


def _is_probable_prime(n: int, rounds: int = 40) -> bool:
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = secrets.randbelow(n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_prime(bits: int) -> int:
    while True:
        # Top two bits set so p*q has exactly 2*bits bits; odd.
        candidate = secrets.randbits(bits) | (0b11 << (bits - 2)) | 1
        if candidate % _E != 1 and _is_probable_prime(candidate):
            return candidate


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_int(v: int) -> bytes:
    body = v.to_bytes(v.bit_length() // 8 + 1, "big")  # leading 0 keeps it positive
    return _der(0x02, body)


def _pure_python_rsa_pkcs8_pem(bits: int = 2048) -> str:
    while True:
        p, q = _random_prime(bits // 2), _random_prime(bits // 2)
        if p != q:
            break
    if p < q:
        p, q = q, p
    n = p * q
    lam = (p - 1) * (q - 1)
    d = pow(_E, -1, lam)
    rsa_private_key = _der(
        0x30,
        b"".join(
            _der_int(v)
            for v in (0, n, _E, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
        ),
    )
    rsa_encryption_oid = bytes.fromhex("06092a864886f70d0101010500")  # OID + NULL
    pkcs8 = _der(
        0x30,
        _der_int(0) + _der(0x30, rsa_encryption_oid) + _der(0x04, rsa_private_key),
    )
    b64 = base64.b64encode(pkcs8).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----\n"


def rsa_private_key_pem(bits: int = 2048) -> str:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        return _pure_python_rsa_pkcs8_pem(bits)
    key = rsa.generate_private_key(public_exponent=_E, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_json(project: str) -> str:
    """A service-account key file in Google's format, for a non-existent account."""
    email = f"offline-plan@{project}.iam.gserviceaccount.com"
    return json.dumps(
        {
            "type": "service_account",
            "project_id": project,
            "private_key_id": secrets.token_hex(20),
            "private_key": rsa_private_key_pem(),
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
            + email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        },
        indent=2,
    )
