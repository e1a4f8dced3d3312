"""Encrypting the tenants' Stripe keys at rest, and finding the keys a tenant pays with.

BILLING_ENCRYPTION_KEYS holds comma-separated Fernet keys: the first encrypts, every one
decrypts (MultiFernet), so a key is rotated by putting a new one first, running
`flask --app wsgi billing rotate-keys`, then dropping the old one. Outside production, with
none set, one is derived from SECRET_KEY so a development install works out of the box.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from core.errors import ServiceError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


class KeysUnreadable(ServiceError):
    pass


def _fernet() -> MultiFernet:
    # Imported here, not with the app (~7 MB in every web worker): only payment settings and
    # billing jobs read the stored keys.
    from cryptography.fernet import Fernet, MultiFernet

    configured = current_app.config.get("BILLING_ENCRYPTION_KEYS")
    if configured:
        keys = [k.strip() for k in configured.split(",") if k.strip()]
    elif current_app.config["PORTICO_ENV"] != "production":
        digest = hashlib.sha256(b"portico-billing-keys:" + current_app.config["SECRET_KEY"].encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    else:
        raise KeysUnreadable("Set BILLING_ENCRYPTION_KEYS (Fernet keys) to store Stripe keys.")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise KeysUnreadable(f"BILLING_ENCRYPTION_KEYS holds a key that is not a Fernet key ({exc}).") from exc


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise KeysUnreadable("The stored Stripe keys cannot be decrypted with BILLING_ENCRYPTION_KEYS; "
                             "enter them again, or restore the old encryption key.") from exc


def rotate(token: str) -> str:
    """The same secret, encrypted with the first key."""
    return _fernet().rotate(token.encode()).decode()


def hint(secret: str) -> str:
    """How a stored secret is shown: its kind and last four characters, never more."""
    prefix = next((p for p in ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_") if secret.startswith(p)), "")
    return f"{prefix}…{secret[-4:]}"


@dataclass(frozen=True)
class StripeKeys:
    secret_key: str | None
    webhook_secret: str | None
    own: bool  # the tenant's own keys, not the platform's defaults

    @property
    def usable(self) -> bool:
        return bool(self.secret_key)


def tenant_keys(settings) -> StripeKeys:
    """The tenant's own keys when it entered them, else the platform's defaults (a
    single-business install sets STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)."""
    if settings is None:
        return stored_keys(None, None)
    return stored_keys(settings.secret_key_encrypted, settings.webhook_secret_encrypted)


def stored_keys(secret_key_encrypted: str | None, webhook_secret_encrypted: str | None) -> StripeKeys:
    """tenant_keys() from the two stored (encrypted) values of the tenant's settings."""
    if secret_key_encrypted:
        webhook = decrypt(webhook_secret_encrypted) if webhook_secret_encrypted else None
        return StripeKeys(decrypt(secret_key_encrypted), webhook, own=True)
    config = current_app.config
    return StripeKeys(config.get("STRIPE_SECRET_KEY"), config.get("STRIPE_WEBHOOK_SECRET"), own=False)
