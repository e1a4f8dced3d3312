"""Helpers the tests share: signing in through the real forms, CSRF tokens, e-mail."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

PASSWORD = "correct-horse-battery-staple"
PLATFORM = "localhost"
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


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
