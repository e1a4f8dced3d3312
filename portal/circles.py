"""The signed-in contact's Circles in the portal: the Circles they belong to, what staff
published to each (pages, links, files), one page, one file's download, and the "latest from
your Circles" home panel. Thin views over crm.circle_content, whose membership rule decides:
anything the contact may not read (unpublished, another Circle, one they left, an archived
one, another tenant's) is a 404, by page and by the file's own URL alike."""
from __future__ import annotations

import functools

from flask import abort, redirect, render_template, url_for

from core.storage import StoredFileMissing
from core.tenancy import get_or_404
from core.web import send_stored_file
from crm import circle_content as content
from crm.models import Circle, CircleItem
from portal import bp
from portal.auth import current_account, portal_login_required
from portal.home import home_panel
from portal.navigation import nav_item

nav_item("Circles", "portal.circles", order=20)


def _ids_first(view):
    """Another tenant's ids are a 404 before anything else, signed in or not (what every
    route naming an object does); the membership rule comes after the sign-in."""

    @functools.wraps(view)
    def wrapper(circle_id, item_id=None, **kwargs):
        get_or_404(Circle, circle_id)
        if item_id is not None:
            get_or_404(CircleItem, item_id)
            kwargs["item_id"] = item_id
        return view(circle_id=circle_id, **kwargs)

    return wrapper


def _readable_circle(circle_id: int) -> Circle:
    circle = content.member_circle(current_account().contact, circle_id)
    if circle is None:
        abort(404)
    return circle


def _readable_item(circle_id: int, item_id: int) -> tuple[Circle, CircleItem]:
    circle = _readable_circle(circle_id)
    item = content.published_item(circle, item_id)
    if item is None:
        abort(404)
    return circle, item


@bp.get("/portal/circles", endpoint="circles")
@portal_login_required
def circles_page():
    circles = content.member_circles(current_account().contact)
    counts = content.published_counts([c.id for c in circles])
    return render_template("portal/circles/list.html", circles=circles, counts=counts)


@bp.get("/portal/circles/<int:circle_id>", endpoint="circles_circle")
@_ids_first
@portal_login_required
def circle_page(circle_id):
    circle = _readable_circle(circle_id)
    return render_template("portal/circles/circle.html", circle=circle,
                           items=content.items_of(circle, published_only=True))


@bp.get("/portal/circles/<int:circle_id>/items/<int:item_id>", endpoint="circles_item")
@_ids_first
@portal_login_required
def item_page(circle_id, item_id):
    circle, item = _readable_item(circle_id, item_id)
    if item.kind == CircleItem.FILE:
        return redirect(url_for("portal.circles_file", circle_id=circle.id, item_id=item.id))
    return render_template("portal/circles/item.html", circle=circle, item=item)


@bp.get("/portal/circles/<int:circle_id>/items/<int:item_id>/file", endpoint="circles_file")
@_ids_first
@portal_login_required
def file_download(circle_id, item_id):
    circle, item = _readable_item(circle_id, item_id)
    if item.kind != CircleItem.FILE:  # a page or link has no file: show the item itself
        return redirect(url_for("portal.circles_item", circle_id=circle.id, item_id=item.id))
    try:
        stream = content.open_file(item)
    except StoredFileMissing:
        return render_template("portal/circles/file_missing.html", circle=circle, item=item), 404
    return send_stored_file(stream, name=item.file_name, content_type=item.content_type, size=item.file_size,
                            inline=content.shown_inline(item))


@home_panel("circles", order=30)
def latest_from_circles(account) -> dict | None:
    """The newest published items of all the contact's Circles: one query."""
    latest = content.latest_items(account.contact)
    return {"latest": latest} if latest else None
