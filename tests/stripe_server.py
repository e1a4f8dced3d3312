"""The tests' Stripe: localstripe (PyPI), run in this process, EXTENDED by this module.

localstripe has Customers, PaymentMethods, Products, Plans, Subscriptions, PaymentIntents,
Invoices and Refunds. It lacks four APIs the app calls; this module adds exactly those to its
aiohttp app, with Stripe's documented request and response shapes, backed by localstripe's own
objects:

  * Prices (`/v1/prices`): a recurring Price is also stored as a localstripe Plan of the same
    id (Stripe itself accepts a price id wherever a plan id goes), so Subscriptions use it;
  * Checkout Sessions (`/v1/checkout/sessions`, `.../expire`), with a hosted page on a second
    address (Stripe's checkout.stripe.com): paying it creates the real Customer (when the
    session has none), PaymentMethod, PaymentIntent or Subscription in localstripe, then sends
    the signed `checkout.session.completed` and redirects to the success URL;
  * Billing Portal sessions (`/v1/billing_portal/sessions`), whose hosted page links back;
  * WebhookEndpoints (`/v1/webhook_endpoints`): creating one registers it with localstripe's
    webhook sender under a fresh `whsec_` secret, returned once as Stripe does.

Two events localstripe does not send are added where Stripe sends them: `invoice.paid` beside
its `invoice.payment_succeeded`, and `charge.refunded` when a Refund is created. A Refund for
more than is left on its charge is refused as Stripe refuses it (`charge_already_refunded`,
`amount_too_large`); localstripe would take it.

Idempotency keys, which localstripe ignores: a POST repeated with the same `Idempotency-Key`
gets the first answer back and changes nothing, as Stripe does.

Disputes (`GET /v1/disputes[/{id}]`), which localstripe lacks too: a card holder's bank opens
them, never the API, so `dispute()` below opens one on a charge (marking the charge
`disputed`, as Stripe does) and sends the signed `charge.dispute.created`.

Also here, for the tests only: `renew()`, what Stripe does when a subscription's period ends
(what its test clocks trigger): a new invoice charged to the customer's default payment method,
the subscription past due when that fails, and the events Stripe sends for it; `holding(path)`,
which keeps every API request under a path waiting unanswered until the block ends (a worker
caught in the middle of a call to Stripe, to be killed there); an inbox (a third address) that records every webhook delivered
to it, signed as localstripe signed it, so a test can replay, repeat and shuffle real
deliveries; and localstripe's fixed state file (/tmp/localstripe.pickle) moved to a private
path, so two test sessions on one machine (SQLite and PostgreSQL) never share it.
"""
from __future__ import annotations

import asyncio
import html
import json
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from localstripe import resources, webhooks
from localstripe.errors import UserError
from localstripe.resources import (Customer, Event, Invoice, InvoiceItem, List, PaymentIntent, PaymentMethod, Plan,
                                   Refund, StripeObject, Subscription, schedule_webhook, store)
from localstripe.server import api_create, api_delete, api_extra, api_list_all, api_retrieve, api_update
from localstripe.server import app as localstripe_app

GOOD_CARD = "4242424242424242"

# Where the hosted pages are served (set when the server starts).
_hosted_base = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _int(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserError(400, f"Invalid integer: {name}")


# --- Prices --------------------------------------------------------------------------------------

class Price(StripeObject):
    object = "price"
    _id_prefix = "price_"

    def __init__(self, currency=None, unit_amount=None, product=None, recurring=None, nickname=None,
                 metadata=None, active=True, lookup_key=None, product_data=None, **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        if not isinstance(currency, str) or len(currency) != 3:
            raise UserError(400, "Missing required param: currency.")
        unit_amount = _int(unit_amount, "unit_amount")
        if unit_amount < 0:
            raise UserError(400, "Invalid unit_amount")
        if product is None:
            raise UserError(400, "Missing required param: product.")
        resources.Product._api_retrieve(product)
        if recurring is not None:
            interval = recurring.get("interval")
            if interval not in ("day", "week", "month", "year"):
                raise UserError(400, "Invalid recurring[interval]")
            recurring = {"interval": interval,
                         "interval_count": _int(recurring.get("interval_count", 1), "interval_count"),
                         "usage_type": "licensed", "aggregate_usage": None, "trial_period_days": None}
        super().__init__()
        self.currency = currency.lower()
        self.unit_amount = unit_amount
        self.unit_amount_decimal = str(unit_amount)
        self.product = product
        self.recurring = recurring
        self.type = "recurring" if recurring else "one_time"
        self.nickname = nickname
        self.metadata = metadata or {}
        self.active = resources.try_convert_to_bool(active)
        self.lookup_key = lookup_key
        self.billing_scheme = "per_unit"
        self.tax_behavior = "unspecified"
        if recurring:
            # The same id as a Plan: localstripe's Subscriptions take plans.
            Plan(id=self.id, amount=unit_amount, currency=self.currency, product=product,
                 interval=recurring["interval"], interval_count=recurring["interval_count"],
                 metadata=dict(self.metadata))

    def _update(self, active=None, metadata=None, nickname=None, lookup_key=None, **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        if active is not None:
            self.active = resources.try_convert_to_bool(active)
        if nickname is not None:
            self.nickname = nickname
        if lookup_key is not None:
            self.lookup_key = lookup_key
        if metadata:
            self.metadata.update(metadata)

    @classmethod
    def _api_list_all(cls, url, product=None, active=None, type=None, limit=None, starting_after=None, **kwargs):
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        if product is not None:
            li._list = [p for p in li._list if p.product == product]
        if active is not None:
            wanted = resources.try_convert_to_bool(active)
            li._list = [p for p in li._list if p.active == wanted]
        if type is not None:
            li._list = [p for p in li._list if p.type == type]
        return li


# --- Checkout Sessions -----------------------------------------------------------------------

class CheckoutSession(StripeObject):
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, mode=None, line_items=None, success_url=None, cancel_url=None, customer=None,
                 customer_email=None, client_reference_id=None, metadata=None, subscription_data=None,
                 payment_intent_data=None, customer_creation=None, payment_method_types=None,
                 allow_promotion_codes=None, locale=None, expires_at=None, **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        if mode not in ("payment", "subscription", "setup"):
            raise UserError(400, "Invalid mode: must be one of payment, setup, or subscription")
        if not success_url:
            raise UserError(400, "Missing required param: success_url.")
        if not isinstance(line_items, list) or not line_items:
            raise UserError(400, "Missing required param: line_items.")
        items = []
        for item in line_items:
            price = Price._api_retrieve(item.get("price"))
            items.append({"price": price.id, "quantity": _int(item.get("quantity", 1), "quantity")})
        prices = [Price._api_retrieve(i["price"]) for i in items]
        recurring = [p for p in prices if p.type == "recurring"]
        if mode == "subscription" and len(recurring) != 1:
            raise UserError(400, "A subscription session needs exactly one recurring price.")
        if mode == "payment" and recurring:
            raise UserError(400, "You specified `payment` mode but passed a recurring price.")
        if customer is not None:
            Customer._api_retrieve(customer)
        super().__init__()
        self.mode = mode
        self.status = "open"
        self.payment_status = "unpaid"
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.customer = customer
        self.customer_email = customer_email
        self.customer_details = None
        self.client_reference_id = client_reference_id
        self.metadata = metadata or {}
        self.subscription_data = subscription_data or {}
        self.payment_intent_data = payment_intent_data or {}
        self.subscription = None
        self.payment_intent = None
        self.invoice = None
        self.currency = prices[0].currency
        self.amount_subtotal = self.amount_total = sum(p.unit_amount * i["quantity"] for p, i in zip(prices, items))
        self.expires_at = _int(expires_at, "expires_at") if expires_at else self.created + 24 * 3600
        self.url = f"{_hosted_base}/c/pay/{self.id}"
        self._items = items

    def _expire(self):
        if self.status != "open":
            raise UserError(400, f"Only Checkout Sessions with a status of open can be expired ({self.status}).")
        self.status = "expired"
        self.url = None
        schedule_webhook(Event("checkout.session.expired", self))

    @classmethod
    def _api_expire(cls, id, **kwargs):
        session = cls._api_retrieve(id)
        session._expire()
        return session

    @classmethod
    def _api_list_line_items(cls, id, **kwargs):
        session = cls._api_retrieve(id)
        li = List(f"/v1/checkout/sessions/{id}/line_items")
        li._list = [_LineItem(session, i) for i in session._items]
        return li

    @classmethod
    def _api_list_all(cls, url, customer=None, payment_intent=None, subscription=None, limit=None,
                      starting_after=None, **kwargs):
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        for name, value in (("customer", customer), ("payment_intent", payment_intent),
                            ("subscription", subscription)):
            if value is not None:
                li._list = [s for s in li._list if getattr(s, name) == value]
        return li

    def _pay(self, card: str = GOOD_CARD) -> None:
        """What Stripe's hosted page does when the buyer pays: the real objects, then the event."""
        if self.status != "open":
            raise UserError(400, "This Checkout Session is no longer open.")
        if self.customer is None:
            self.customer = Customer(email=self.customer_email, metadata=dict(self.metadata)).id
        pm = PaymentMethod(type="card", card={"number": card, "exp_month": 12, "exp_year": 2040, "cvc": "123"})
        PaymentMethod._api_attach(pm.id, customer=self.customer)
        Customer._api_update(self.customer, invoice_settings={"default_payment_method": pm.id})
        prices = [(Price._api_retrieve(i["price"]), i["quantity"]) for i in self._items]
        if self.mode == "payment":
            intent = PaymentIntent(amount=self.amount_total, currency=self.currency, customer=self.customer,
                                   payment_method=pm.id, metadata=dict(self.payment_intent_data.get("metadata") or {}))
            intent._confirm(on_failure_now=lambda: None)
            self.payment_intent = intent.id
            paid = intent.status == "succeeded"
        else:
            # One-time prices beside the recurring one go on the first invoice, as on Stripe.
            for price, quantity in prices:
                if price.type == "one_time":
                    InvoiceItem(customer=self.customer, amount=price.unit_amount * quantity, currency=price.currency,
                                description="One-time fee")
            recurring = next(p for p, _ in prices if p.type == "recurring")
            trial_days = self.subscription_data.get("trial_period_days")
            trial_days = _int(trial_days, "trial_period_days") if trial_days not in (None, "") else None
            subscription = Subscription(customer=self.customer, items=[{"plan": recurring.id}],
                                        metadata=dict(self.subscription_data.get("metadata") or {}),
                                        trial_period_days=trial_days)
            if trial_days:
                # localstripe leaves a trial subscription "incomplete"; Stripe starts it trialing.
                subscription.status = "trialing"
                subscription.trial_start = int(time.time())
                subscription.trial_end = subscription.trial_start + trial_days * 86400
            self.subscription = subscription.id
            self.invoice = subscription.latest_invoice
            paid = subscription.status in ("active", "trialing")
        self.customer_details = {"email": self.customer_email}
        if not paid:
            raise UserError(402, "Your card was declined.", {"code": "card_declined"})
        self.status = "complete"
        self.payment_status = "paid" if self.amount_total and not (
            self.mode == "subscription" and self.subscription_data.get("trial_period_days")) else "no_payment_required"
        self.url = None
        schedule_webhook(Event("checkout.session.completed", self))


class _LineItem(StripeObject):
    object = "item"

    def __init__(self, session, item):  # not stored: a view of the session's items
        price = Price._api_retrieve(item["price"])
        self.id = "li_" + item["price"]
        self.price = price._export()
        self.quantity = item["quantity"]
        self.currency = price.currency
        self.amount_total = self.amount_subtotal = price.unit_amount * item["quantity"]
        self.description = price.nickname


# --- Billing Portal sessions -----------------------------------------------------------------

class BillingPortalSession(StripeObject):
    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, customer=None, return_url=None, configuration=None, locale=None, **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        if customer is None:
            raise UserError(400, "Missing required param: customer.")
        Customer._api_retrieve(customer)
        super().__init__()
        self.customer = customer
        self.return_url = return_url
        self.configuration = configuration
        self.locale = locale
        self.url = f"{_hosted_base}/p/session/{self.id}"


# --- Webhook endpoints -----------------------------------------------------------------------

class WebhookEndpoint(StripeObject):
    object = "webhook_endpoint"
    _id_prefix = "we_"

    def __init__(self, url=None, enabled_events=None, description=None, metadata=None, api_version=None, **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        if not url or not str(url).startswith("http"):
            raise UserError(400, "Invalid URL: url")
        if not isinstance(enabled_events, list) or not enabled_events:
            raise UserError(400, "Missing required param: enabled_events.")
        super().__init__()
        self.url = url
        self.enabled_events = enabled_events
        self.description = description
        self.metadata = metadata or {}
        self.api_version = api_version
        self.status = "enabled"
        self._secret = "whsec_" + secrets.token_hex(16)
        self._register()

    def _register(self):
        events = None if "*" in self.enabled_events else list(self.enabled_events)
        webhooks.register_webhook(self.id, self.url, self._secret, events)

    def _update(self, url=None, enabled_events=None, description=None, metadata=None, disabled=None, **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        self.url = url or self.url
        self.enabled_events = enabled_events or self.enabled_events
        if description is not None:
            self.description = description
        if metadata:
            self.metadata.update(metadata)
        if disabled is not None:
            self.status = "disabled" if resources.try_convert_to_bool(disabled) else "enabled"
        webhooks._webhooks.pop(self.id, None)
        if self.status == "enabled":
            self._register()

    @classmethod
    def _api_create(cls, **data):
        endpoint = cls(**data)
        exported = endpoint._export()
        exported["secret"] = endpoint._secret  # only in the answer to the create, as on Stripe
        return _Exported(exported)

    @classmethod
    def _api_delete(cls, id):
        webhooks._webhooks.pop(id, None)
        return super()._api_delete(id)


class _Exported:
    """An already exported object, for the one answer that carries more than the object."""

    def __init__(self, data):
        self.data = data

    def _export(self, expand=None):
        return self.data


# --- events localstripe does not send ----------------------------------------------------------

_original_invoice_paid = Invoice._on_payment_success


def _invoice_paid_too(self):
    _original_invoice_paid(self)
    schedule_webhook(Event("invoice.paid", self))


_original_refund_init = Refund.__init__


def _refund_announced(self, charge=None, payment_intent=None, amount=None, **kwargs):
    if charge or payment_intent:
        charge_obj = (resources.Charge._api_retrieve(charge) if charge else
                      PaymentIntent._api_retrieve(payment_intent).latest_charge)
        left = charge_obj.amount - charge_obj.amount_refunded
        if left <= 0:
            raise UserError(400, f"Charge {charge_obj.id} has already been refunded.",
                            {"code": "charge_already_refunded"})
        wanted = resources.try_convert_to_int(amount) if amount is not None else left
        if isinstance(wanted, int) and wanted > left:
            raise UserError(400, f"Refund amount ({wanted / 100:.2f} {charge_obj.currency.upper()}) is greater than "
                                 f"unrefunded amount on charge ({left / 100:.2f} {charge_obj.currency.upper()})",
                            {"code": "amount_too_large", "param": "amount"})
    _original_refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount, **kwargs)
    schedule_webhook(Event("charge.refunded", resources.Charge._api_retrieve(self.charge)))


# --- Disputes ----------------------------------------------------------------------------------

class Dispute(StripeObject):
    object = "dispute"
    _id_prefix = "dp_"

    def __init__(self, charge=None, reason="fraudulent", **kwargs):
        if kwargs:
            raise UserError(400, "Received unknown parameter: " + ", ".join(kwargs))
        charge_obj = resources.Charge._api_retrieve(charge)
        super().__init__()
        self.charge = charge_obj.id
        self.payment_intent = charge_obj.payment_intent
        self.amount = charge_obj.amount
        self.currency = charge_obj.currency
        self.reason = reason
        self.status = "needs_response"
        self.is_charge_refundable = False
        self.metadata = {}
        charge_obj.disputed = True


# --- the hosted pages (Stripe's checkout.stripe.com and billing.stripe.com) ------------------

def _page(title: str, body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><html><head><meta charset='utf-8'>"
                             f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>"
                             f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>",
                        content_type="text/html")


async def _checkout_page(request):
    try:
        session = CheckoutSession._api_retrieve(request.match_info["id"])
    except UserError:
        raise web.HTTPNotFound()
    if session.status != "open":
        return _page("This checkout is closed", f"<p>Status: {session.status}</p>")
    amount = f"{session.amount_total / 100:.2f} {session.currency.upper()}"
    return _page("Test checkout", f"<p>Total: {amount}</p>"
                 f"<form method='post'><label>Card number <input name='card' value='{GOOD_CARD}'></label>"
                 f"<button type='submit'>Pay</button></form>"
                 + (f"<p><a href='{html.escape(session.cancel_url)}'>Back</a></p>" if session.cancel_url else ""))


async def _checkout_pay(request):
    try:
        session = CheckoutSession._api_retrieve(request.match_info["id"])
    except UserError:
        raise web.HTTPNotFound()
    form = await request.post()
    try:
        session._pay(form.get("card") or GOOD_CARD)
    except UserError as exc:
        return _page("Payment failed", f"<p>{html.escape(exc.body['error'].get('message', 'Declined'))}</p>")
    finally:
        store.dump_to_disk()
    raise web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))


async def _portal_page(request):
    try:
        session = BillingPortalSession._api_retrieve(request.match_info["id"])
    except UserError:
        raise web.HTTPNotFound()
    back = f"<p><a href='{html.escape(session.return_url)}'>Return</a></p>" if session.return_url else ""
    return _page("Test billing portal", f"<p>Customer {html.escape(session.customer)}</p>{back}")


# --- the inbox: deliveries recorded for the tests ----------------------------------------------

@dataclass
class Delivery:
    body: bytes
    signature: str

    @property
    def event(self) -> dict:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return self.event["type"]


@dataclass
class Inbox:
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)

    def clear(self) -> None:
        with self.lock:
            self.deliveries.clear()

    def of_type(self, *types: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.type in types]

    def wait_for(self, *types: str, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        """Deliveries of these types once at least `count` have arrived (localstripe sends each
        about a second after the action)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of_type(*types)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {count} × {types} delivered within {timeout}s; got "
                             f"{[d.type for d in self.deliveries]}")

    def settle(self, quiet: float = 1.5, timeout: float = 15.0) -> list[Delivery]:
        """Every delivery, once none has arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self.lock:
                now_count = len(self.deliveries)
            if now_count != seen:
                seen, since = now_count, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.05)
        with self.lock:
            return list(self.deliveries)


# --- the server ----------------------------------------------------------------------------------

@dataclass
class _Hold:
    prefix: str
    arrived: threading.Event
    released: asyncio.Event


class StripeServer:
    """localstripe (extended as above) on 127.0.0.1, in a thread of this process, on free
    ports: the API at `api_base`, the hosted pages at `hosted_base`, the inbox at `inbox_url`."""

    def __init__(self, state_file: str):
        self.state_file = state_file
        self.api_port, self.hosted_port, self.inbox_port = _free_port(), _free_port(), _free_port()
        self.api_base = f"http://127.0.0.1:{self.api_port}"
        self.hosted_base = f"http://127.0.0.1:{self.hosted_port}"
        self.inbox_url = f"http://127.0.0.1:{self.inbox_port}/inbox"
        self.inbox = Inbox()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runners: list[web.AppRunner] = []
        self._thread: threading.Thread | None = None
        self._hold: _Hold | None = None

    # localstripe writes its whole store to one fixed file after every change; ours is private.
    def _patch_state_file(self) -> None:
        path = self.state_file

        def dump_to_disk(store_self):
            import pickle

            with open(path, "wb") as f:
                pickle.dump(dict(store_self), f, protocol=pickle.HIGHEST_PROTOCOL)

        resources.Store.dump_to_disk = dump_to_disk
        resources.Store.try_load_from_disk = lambda store_self: None

    def start(self) -> "StripeServer":
        global _hosted_base
        _hosted_base = self.hosted_base
        self._patch_state_file()
        Invoice._on_payment_success = _invoice_paid_too
        Refund.__init__ = _refund_announced
        _add_routes(localstripe_app)
        localstripe_app.middlewares.append(self._held)
        hosted = web.Application()
        hosted.router.add_get("/c/pay/{id}", _checkout_page)
        hosted.router.add_post("/c/pay/{id}", _checkout_pay)
        hosted.router.add_get("/p/session/{id}", _portal_page)
        inbox = web.Application()

        async def receive(request):
            self.inbox.add(Delivery(await request.read(), request.headers.get("Stripe-Signature", "")))
            return web.Response(text="ok")

        inbox.router.add_post("/inbox", receive)
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                for application, port in ((localstripe_app, self.api_port), (hosted, self.hosted_port),
                                          (inbox, self.inbox_port)):
                    runner = web.AppRunner(application, access_log=None)
                    loop.run_until_complete(runner.setup())
                    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
                    self._runners.append(runner)
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            _cancel_pending_sends(loop)
            loop.run_until_complete(asyncio.sleep(0))
            for runner in reversed(self._runners):
                loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="localstripe", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @web.middleware
    async def _held(self, request, handler):
        hold = self._hold
        if hold is not None and request.path.startswith(hold.prefix):
            hold.arrived.set()
            await hold.released.wait()
        return await handler(request)

    @contextmanager
    def holding(self, prefix: str):
        """While the block runs, API requests whose path starts with `prefix` wait unanswered;
        the block gets the hold, whose `arrived` (a threading.Event) is set by the first one.
        They are answered once it ends."""
        hold = _Hold(prefix, threading.Event(), self.call(asyncio.Event))
        self._hold = hold
        try:
            yield hold
        finally:
            self._hold = None
            self._loop.call_soon_threadsafe(hold.released.set)

    def call(self, fn, *args, **kwargs):
        """Run fn on the server's loop (localstripe's objects and its webhook sender live there)."""
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(fn, *args, **kwargs), self._loop)
        return future.result(10)

    def reset(self) -> None:
        """Forget every object and webhook target (DELETE /_config/data forgets the objects)."""
        import urllib.request

        request = urllib.request.Request(f"{self.api_base}/_config/data", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()
        # An event of the previous test still waiting out localstripe's one-second delay
        # would land in the next test's inbox.
        self.call(_cancel_pending_sends)
        webhooks._webhooks.clear()
        _idempotent_answers.clear()
        self.inbox.clear()

    def register_inbox(self, secret: str, hook_id: str = "inbox") -> None:
        """Send every event, signed with `secret`, to the inbox (localstripe's own
        `POST /_config/webhooks/<id>`)."""
        import urllib.parse
        import urllib.request

        data = urllib.parse.urlencode({"url": self.inbox_url, "secret": secret}).encode()
        urllib.request.urlopen(f"{self.api_base}/_config/webhooks/{hook_id}", data=data, timeout=10).close()

    def renew(self, subscription_id: str) -> str:
        """A renewal, as at the end of a period; returns the new invoice's id."""
        def renew():
            subscription = Subscription._api_retrieve(subscription_id)
            subscription._create_invoice()
            invoice = Invoice._api_retrieve(subscription.latest_invoice)
            if invoice.status != "paid":
                schedule_webhook(Event("invoice.payment_failed", invoice))
            schedule_webhook(Event("customer.subscription.updated", subscription))
            store.dump_to_disk()
            return invoice.id

        return self.call(renew)

    def set_card(self, customer_id: str, card: str) -> None:
        """The customer's default card from now on (4000000000000341 attaches, then is declined)."""
        def change():
            pm = PaymentMethod(type="card", card={"number": card, "exp_month": 12, "exp_year": 2040, "cvc": "123"})
            PaymentMethod._api_attach(pm.id, customer=customer_id)
            Customer._api_retrieve(customer_id).invoice_settings["default_payment_method"] = pm.id

        self.call(change)

    def dispute(self, charge_id: str) -> str:
        """The card holder's bank disputes the charge: returns the Dispute's id."""
        def open_dispute():
            dispute = Dispute(charge=charge_id)
            schedule_webhook(Event("charge.dispute.created", dispute))
            store.dump_to_disk()
            return dispute.id

        return self.call(open_dispute)

    def pay(self, session_id: str, card: str = GOOD_CARD) -> str:
        """Press "Pay" on the hosted checkout page; returns where it redirects."""
        import urllib.parse
        import urllib.request

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        data = urllib.parse.urlencode({"card": card}).encode()
        try:
            response = opener.open(f"{self.hosted_base}/c/pay/{session_id}", data=data, timeout=10)
        except urllib.error.HTTPError as exc:
            if exc.code == 303:
                return exc.headers["Location"]
            raise
        raise AssertionError(f"payment did not go through: {response.read().decode()[:500]}")


def _cancel_pending_sends(loop=None) -> None:
    for task in asyncio.all_tasks(loop):
        if task.get_coro().__name__ == "_send_webhook":
            task.cancel()


async def _as_coroutine(fn, *args, **kwargs):
    return fn(*args, **kwargs)


_routes_added = False
_idempotent_answers: dict[tuple[str, str], tuple[int, bytes]] = {}


@web.middleware
async def _idempotent(request, handler):
    """Stripe's idempotency: the first answer to a key, again, for every repeat of its POST."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    seen = _idempotent_answers.get((key, request.path))
    if seen is not None:
        return web.Response(status=seen[0], body=seen[1], content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    response = await handler(request)
    if isinstance(response, web.Response) and response.body is not None and response.status < 500:
        _idempotent_answers[(key, request.path)] = (response.status, bytes(response.body))
    return response


def _add_routes(app: web.Application) -> None:
    global _routes_added
    if _routes_added:
        return
    _routes_added = True
    app.middlewares.append(_idempotent)
    for method, url, handler in (
            ("POST", "/v1/checkout/sessions/{id}/expire", api_extra(CheckoutSession._api_expire, None)),
            ("GET", "/v1/checkout/sessions/{id}/line_items", api_extra(CheckoutSession._api_list_line_items, None))):
        app.router.add_route(method, url, handler)
    app.router.add_route("GET", "/v1/disputes/{id}", api_retrieve(Dispute, "/v1/disputes"))
    app.router.add_route("GET", "/v1/disputes", api_list_all(Dispute, "/v1/disputes"))
    for cls, url in ((Price, "/v1/prices"), (CheckoutSession, "/v1/checkout/sessions"),
                     (BillingPortalSession, "/v1/billing_portal/sessions"), (WebhookEndpoint, "/v1/webhook_endpoints")):
        app.router.add_route("POST", url, api_create(cls, url))
        app.router.add_route("GET", url + "/{id}", api_retrieve(cls, url))
        app.router.add_route("GET", url, api_list_all(cls, url))
        if cls in (Price, WebhookEndpoint):
            app.router.add_route("POST", url + "/{id}", api_update(cls, url))
        if cls is WebhookEndpoint:
            app.router.add_route("DELETE", url + "/{id}", api_delete(cls, url))
