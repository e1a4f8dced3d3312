"""Helpers the tests share: signing in through the real forms, CSRF tokens, e-mail."""
from __future__ import annotations

import re
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"
PLATFORM = "localhost"
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


@contextmanager
def tenant_session(app, tenant: "TenantWorld"):
    """Work as the tenant inside an app context, committing at the end."""
    from core.db import db
    from core.tenancy import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        yield
        db.session.commit()


def in_tenant(app, tenant: "TenantWorld", fn):
    """Run fn as the tenant and commit; ORM objects come back loaded and detached."""
    from core.db import db
    from core.tenancy import tenant_context

    with app.app_context(), tenant_context(tenant.id):
        result = fn()
        db.session.commit()
        for obj in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(obj, db.Model):
                db.session.refresh(obj)
                db.session.expunge(obj)
        return result


def staff_member(tenant: "TenantWorld", role: str):
    """The tenant's staff member of that role, loaded in the current session."""
    from core.db import db
    from core.identity import StaffUser

    return db.session.get(StaffUser, tenant.members[role].id)


def start_worker(env: dict) -> subprocess.Popen:
    """`flask --app wsgi worker` as operators run it, a separate process; its output is kept."""
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def host_of(slug: str | None) -> str:
    return f"{slug}.{PLATFORM}" if slug else PLATFORM


def csrf_token(client, path: str = "/") -> str:
    """The session's CSRF token, read from a page as a browser would."""
    response = client.get(path)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


def post_form(client, path: str, data: dict | None = None, **kwargs):
    """POST like the page's own form does, with the session's CSRF token."""
    payload = {"csrf_token": csrf_token(client, "/"), **(data or {})}
    return client.post(path, data=payload, **kwargs)


def login_staff(client, email: str, password: str = PASSWORD, remember: bool = False):
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    return post_form(client, "/staff/login", data)


def login_portal(client, email: str, password: str = PASSWORD, remember: bool = False, next: str | None = None):
    """Sign in to the portal through its own sign-in page, as a browser would."""
    data = {"email": email, "password": password}
    if remember:
        data["remember"] = "y"
    path = "/portal/login" + (f"?next={next}" if next else "")
    return client.post(path, data={"csrf_token": csrf_token(client, "/portal/login"), **data})


PORTAL_COOKIE = "portico_portal"


@dataclass
class Member:
    id: int
    email: str
    name: str
    role: str


@dataclass
class TenantWorld:
    id: int
    slug: str
    name: str
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return host_of(self.slug)


@dataclass
class Mailbox:
    """Messages the SMTP sink has received."""

    messages: list[EmailMessage] = field(default_factory=list)

    def receive(self, raw: bytes) -> None:
        self.messages.append(message_from_bytes(raw, policy=policy.default))

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["To"]]

    @staticmethod
    def body(message: EmailMessage) -> str:
        return message.get_body(("plain",)).get_content()

    def links(self, message: EmailMessage) -> list[str]:
        return re.findall(r"https?://\S+", self.body(message))
