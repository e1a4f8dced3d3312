"""Every call to Stripe goes through here: the official library, pointed at STRIPE_API_BASE
when it is set (unset in production: Stripe itself), with the tenant's keys.

The library is imported where it is called, not with the app: it brings requests and aiohttp
(~14 MB in every web worker), and only payment pages and billing jobs talk to Stripe."""
from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import current_app

from core.errors import ServiceError

if TYPE_CHECKING:
    import stripe

UNAVAILABLE = "Payments are unavailable right now. Nothing was changed; please try again in a few minutes."


class PaymentsUnavailable(ServiceError):
    """Stripe could not be reached, or refused for a reason that is not the user's input."""

    def __init__(self, message: str = UNAVAILABLE, field: str | None = None):
        super().__init__(message, field)


class NotConfigured(ServiceError):
    pass


_CLIENTS: dict[tuple[str, str | None], "stripe.StripeClient"] = {}
_MAX_CLIENTS = 1_000


def client(secret_key: str | None) -> stripe.StripeClient:
    """The client of these keys, one per process: it keeps its connections to Stripe open
    (each thread its own, as the library does), so a job or page that calls Stripe does not
    open a new TLS connection every time."""
    if not secret_key:
        raise NotConfigured("Payments are not set up yet: an Owner enters the Stripe keys in the payment settings.")
    base = current_app.config.get("STRIPE_API_BASE")
    known = _CLIENTS.get((secret_key, base))
    if known is not None:
        return known
    import stripe

    made = stripe.StripeClient(secret_key, base_addresses={"api": base} if base else None, max_network_retries=1)
    if len(_CLIENTS) >= _MAX_CLIENTS:
        _CLIENTS.clear()
    _CLIENTS[(secret_key, base)] = made
    return made


@contextmanager
def calling_stripe(field: str | None = None):
    """Stripe's failures as service errors the page can show: a connection failure or an
    outage is "unavailable"; anything else Stripe refused says why in Stripe's words."""
    import stripe

    try:
        yield
    except stripe.AuthenticationError as exc:
        raise ServiceError("Stripe refused the secret key: check it in the payment settings.", field) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise PaymentsUnavailable(field=field) from exc
    except stripe.StripeError as exc:
        if getattr(exc, "http_status", None) is None or exc.http_status >= 500:
            raise PaymentsUnavailable(field=field) from exc
        raise ServiceError(f"Stripe refused: {exc.user_message or exc}", field) from exc


def idempotency(*parts) -> dict:
    """Request options carrying an idempotency key: a retried create gives back the first."""
    return {"idempotency_key": "portico:" + ":".join(str(p) for p in parts)}
