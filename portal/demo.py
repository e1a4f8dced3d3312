"""A client of the demo tenant with a portal login, and something for them to find there (a
Circle's page and link, an event to answer, a task to tick off), so
`make run` shows the portal as a client meets it (the login is printed with the others)."""
from __future__ import annotations

from datetime import timedelta

from io import BytesIO

import sqlalchemy as sa

from core.db import db, utcnow
from core.demo import DEMO_PASSWORD, demo_link, demo_seeder
from core.identity import StaffRole, StaffUser, hash_password
from crm.models import Circle, Contact

DEMO_CLIENT_EMAIL = "jasmine.patel@kettleandco.example"
demo_link("Client portal", "/portal/login", login=f"client {DEMO_CLIENT_EMAIL} / {DEMO_PASSWORD}")

WELCOME = """<p>Welcome to the VIP corner of Northwind Studio. This is where we share what we
are working on for you before anyone else sees it.</p>
<h3>This month</h3>
<ul><li>Your brand review is booked for the second week.</li>
<li>The checklist for the review is in the file below: have a look before we meet.</li></ul>
<p>Questions? Reply to any of our e-mails, or call us on <strong>020 7946 0000</strong>.</p>"""

CHECKLIST = """Brand review checklist

1. Your current logo files (any format you have).
2. Three brands you admire, and why.
3. Who your customers are, in a sentence or two.
4. What you want people to feel when they meet your brand.
"""


@demo_seeder
def seed_portal_client(tenant) -> None:
    from crm import circle_content
    from crm.companies import set_primary_contact
    from portal.accounts import account_for, register_portal_account, verify_email

    contact = db.session.scalar(sa.select(Contact).where(Contact.email == DEMO_CLIENT_EMAIL))
    if contact is None or account_for(contact) is not None:
        return  # no demo CRM to stand on, or the client was seeded already: keep what people changed
    owner = db.session.scalar(sa.select(StaffUser).where(StaffUser.role == StaffRole.OWNER).order_by(StaffUser.id))
    account = register_portal_account(contact, password=None, password_hash=hash_password(DEMO_PASSWORD),
                                      needs_approval=False, actor=owner, source="the demo")
    verify_email(account)
    if contact.company is not None:
        set_primary_contact(contact.company, contact, actor=owner)  # so the portal shows the Company page
    vip = db.session.scalar(sa.select(Circle).where(Circle.name == "VIP clients"))
    if vip is not None:
        circle_content.create_page(vip, "Welcome, VIP clients", WELCOME, owner, publish=True)
        circle_content.create_link(vip, "Our pricing for 2027", "https://example.com/pricing", owner, publish=True)
        circle_content.create_file(vip, "Brand review checklist", BytesIO(CHECKLIST.encode()),
                                   "brand-review-checklist.txt", owner, publish=True)
    _seed_home(contact, owner)


def _seed_home(contact, owner) -> None:
    """An event to answer and a task to tick off on her portal home."""
    from crm.activities import add_attendee, create_event, create_task

    soon = (utcnow() + timedelta(days=10)).replace(hour=14, minute=0, second=0, microsecond=0)
    workshop = create_event("Brand review workshop", soon, ends_at=soon + timedelta(hours=2),
                            location="Northwind Studio, 2nd floor", actor=owner,
                            description="Two hours on your new brand, with coffee.")
    add_attendee(workshop, contact, owner)
    create_task("Send us your logo files", contact=contact, shared_with_contact=True, due_at=soon - timedelta(days=3),
                description="The originals, if you have them (SVG or EPS); a large PNG will do.", actor=owner)
