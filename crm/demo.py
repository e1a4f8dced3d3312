"""Sample CRM data for the demo tenant: companies, people at every stage, circles, tags,
notes, tasks and events, made through the real services so they look like real use."""
from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

from core.db import db, utcnow
from core.demo import demo_seeder
from core.identity import StaffUser
from crm.models import Contact, PipelineStatus

COMPANIES = [
    ("Harbour Bakery", "harbourbakery.example", "Bristol", "GB"),
    ("Kettle & Co Design", "kettleandco.example", "Leeds", "GB"),
    ("Lumen Dental", "lumendental.example", "Dublin", "IE"),
    ("Ortega Logistics", "ortegalogistics.example", "Valencia", "ES"),
    ("Pine Street Lawyers", "pinestreetlaw.example", "Boston", "US"),
    ("Quayside Yoga", "quaysideyoga.example", "Cork", "IE"),
    ("Rivet Robotics", "rivetrobotics.example", "Munich", "DE"),
    ("Saffron Kitchen", "saffronkitchen.example", "Manchester", "GB"),
]
PEOPLE = [
    ("Amelia", "Hart"), ("Bilal", "Chaudhry"), ("Chloé", "Martin"), ("Daniel", "Okafor"), ("Elena", "Rossi"),
    ("Farah", "Haddad"), ("George", "Whitfield"), ("Hana", "Sato"), ("Isaac", "Levi"), ("Jasmine", "Patel"),
    ("Kai", "Nakamura"), ("Lucía", "Fernández"), ("Marek", "Nowak"), ("Nia", "Evans"), ("Oscar", "Lindqvist"),
    ("Priya", "Raman"), ("Quentin", "Dubois"), ("Rosa", "Alvarez"), ("Samuel", "Mensah"), ("Tara", "O'Brien"),
    ("Umar", "Farouk"), ("Valentina", "Greco"), ("William", "Chen"), ("Ximena", "Torres"), ("Yusuf", "Demir"),
    ("Zoe", "Fischer"), ("Aaron", "Brooks"), ("Bea", "Lund"), ("Cyrus", "Amini"), ("Dalia", "Kovač"),
]
SOURCES = ["Website", "Referral", "Trade fair", "LinkedIn", "Newsletter"]
NOTES = [
    "Called to introduce our services; asked for a proposal by Friday.",
    "Met at the trade fair. Interested in the premium plan — see https://example.com/pricing",
    "Prefers e-mail over phone. Budget approved for next quarter.",
    "Sent the onboarding checklist. Follow up about the contract next week.",
]


@demo_seeder
def seed_crm(tenant) -> None:
    if db.session.scalar(sa.select(Contact.id).limit(1)) is not None:
        return  # the demo already has its contacts: keep what people changed
    from crm import activities, circles, tags
    from crm.companies import create_company, set_primary_contact
    from crm.contacts import change_role, change_status, create_contact

    rng = random.Random(7)
    staff = list(db.session.scalars(sa.select(StaffUser).order_by(StaffUser.id)))
    owner = staff[0]
    statuses = {s.name: s.id for s in db.session.scalars(sa.select(PipelineStatus))}
    companies = [create_company({"name": n, "domain": d, "city": c, "country": cc, "role": "prospect"}, actor=owner)
                 for n, d, c, cc in COMPANIES]
    vip = circles.create_circle("VIP clients", "Our closest clients: first to hear of new offers.", "#b45309", owner)
    newsletter = circles.create_circle("Newsletter", "Monthly newsletter readers.", "#1d4ed8", owner)
    workshop = circles.create_circle("Spring workshop", "Registered for the spring workshop.", "#15803d", owner)
    people = []
    for i, (first, last) in enumerate(PEOPLE):
        company = companies[i % len(companies)]
        who = rng.choice(staff)
        contact = create_contact({
            "first_name": first, "last_name": last,
            "email": f"{first.lower()}.{last.lower()}@{company.domain}".replace("'", "").replace("é", "e")
                     .replace("í", "i").replace("č", "c"),
            "phone": f"+44 20 7946 {1000 + i:04d}", "company_name": company.name,
            "job_title": rng.choice(["Owner", "Office manager", "Director", "Marketing lead", "Founder"]),
            "source": rng.choice(SOURCES), "owner_id": who.id, "city": company.city, "country": company.country,
        }, actor=who)
        people.append(contact)
        stage = i % 10
        if stage >= 4:
            change_role(contact, "prospect", actor=who)
            change_status(contact, statuses["Contacted"], actor=who)
        if stage >= 7:
            change_role(contact, "client", actor=who)
            change_status(contact, statuses["Converted"], actor=who)
            circles.add_contact_to_circle(vip, contact, owner)
        if i % 3 == 0:
            circles.add_contact_to_circle(newsletter, contact, owner)
        if i % 4 == 1:
            tags.tag_contact(contact, rng.choice(["hot", "follow-up", "partner", "event"]), who)
        if i % 5 == 0:
            activities.add_note(rng.choice(NOTES), contact=contact, author=who)
        if i % 6 == 2:
            activities.create_task(f"Call {first} about the proposal", kind="call",
                                   due_at=utcnow() + timedelta(days=rng.randint(-3, 10)), assignee_id=who.id,
                                   contact=contact, actor=who)
    for company in companies[:4]:
        staff_of = [p for p in people if p.company_id == company.id]
        if staff_of:
            set_primary_contact(company, staff_of[0], actor=owner)
    event = activities.create_event("Spring workshop: growing with your clients", utcnow() + timedelta(days=21),
                                    ends_at=utcnow() + timedelta(days=21, hours=3), location="Harbour Hall, Bristol",
                                    capacity=25, actor=owner)
    for contact in people[:6]:
        circles.add_contact_to_circle(workshop, contact, owner)
    activities.invite_circle(event, workshop, owner)
    db.session.flush()
