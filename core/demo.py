"""The demo tenant behind `flask --app wsgi demo`. Each feature registers a seeder that adds
realistic sample data, so a new user lands in a living product."""
from __future__ import annotations

from typing import Callable

DEMO_SLUG = "demo"
DEMO_NAME = "Northwind Studio"
DEMO_PASSWORD = "harbour-lantern-42"
DEMO_STAFF = [
    ("owner@demo.example", "Olivia Owner", "owner"),
    ("admin@demo.example", "Adam Admin", "admin"),
    ("staff@demo.example", "Sam Staff", "staff"),
]
DEMO_OPERATOR = ("operator@portico.example", "harbour-lantern-42")

_seeders: list[Callable] = []
_links: list[tuple[str, str, str | None]] = []


def demo_seeder(fn: Callable) -> Callable:
    """Register `fn(tenant)`; it runs as the demo tenant and must be idempotent."""
    _seeders.append(fn)
    return fn


def seeders() -> list[Callable]:
    return list(_seeders)


def demo_link(label: str, path: str, *, login: str | None = None) -> None:
    """Print `label` and the demo tenant's address of `path` with the logins (a public page a
    feature wants people to try), and under it `login` (who to sign in as there) if given."""
    _links.append((label, path, login))


def links() -> list[tuple[str, str, str | None]]:
    return list(_links)
