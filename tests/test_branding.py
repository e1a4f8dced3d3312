"""Tenant branding: name, colour and logo on every page of that tenant, and only there."""
from __future__ import annotations

import base64
import io

from tests.support import post_form

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _save(client, **fields):
    data = {"display_name": "", "primary_color": "#1f6feb", **fields}
    return post_form(client, "/staff/settings/branding", data, content_type="multipart/form-data",
                     follow_redirects=True)


def test_branding_shows_on_the_tenants_pages_only(world, staff_client, client_for):
    owner = staff_client("owner")
    saved = _save(owner, display_name="Acme Client Hub", primary_color="#AA3300",
                  logo=(io.BytesIO(PNG), "logo.png"))
    assert "Branding saved." in saved.get_data(as_text=True)
    home = client_for("acme").get("/").get_data(as_text=True)
    assert "Acme Client Hub" in home and "--brand: #aa3300;" in home
    assert 'src="/branding/logo?v=1"' in home
    logo = client_for("acme").get("/branding/logo?v=1")
    assert logo.status_code == 200 and logo.mimetype == "image/png" and logo.data == PNG
    other = client_for("globex")
    assert "Acme Client Hub" not in other.get("/").get_data(as_text=True)
    assert other.get("/branding/logo").status_code == 404


def test_every_page_names_its_icon_the_tenants_logo_when_it_has_one(world, staff_client, client_for):
    """Browsers ask for /favicon.ico (a 404 in every console) unless the page names its icon."""
    import re

    def icon_of(page: str) -> str:
        return re.search(r'<link rel="icon" type="([^"]+)" href="([^"]+)"', page).group(2)

    portico_icon = icon_of(client_for("acme").get("/staff/login").get_data(as_text=True))
    answer = client_for("acme").get(portico_icon)
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml" and b"<svg" in answer.data
    _save(staff_client("owner"), logo=(io.BytesIO(PNG), "logo.png"))
    assert icon_of(client_for("acme").get("/portal/login").get_data(as_text=True)) == "/branding/logo?v=1"
    assert icon_of(client_for("globex").get("/portal/login").get_data(as_text=True)) == portico_icon


def test_bad_branding_input_is_explained_and_changes_nothing(world, staff_client, client_for):
    owner = staff_client("owner")
    bad_colour = _save(owner, display_name="Renamed", primary_color="red")
    assert "Use a colour like #1f6feb." in bad_colour.get_data(as_text=True)
    fake_png = _save(owner, logo=(io.BytesIO(b"<svg onload=alert(1)>"), "logo.png"))
    assert "Upload the logo as a PNG, JPEG, GIF or WebP image." in fake_png.get_data(as_text=True)
    wrong_ext = _save(owner, logo=(io.BytesIO(PNG), "logo.svg"))
    assert "Upload a PNG, JPEG, GIF or WebP image." in wrong_ext.get_data(as_text=True)
    home = client_for("acme").get("/").get_data(as_text=True)
    assert "Renamed" not in home and "/branding/logo" not in home


def test_logo_can_be_removed(world, staff_client, client_for):
    owner = staff_client("owner")
    _save(owner, logo=(io.BytesIO(PNG), "logo.png"))
    _save(owner, remove_logo="y")
    assert client_for("acme").get("/branding/logo").status_code == 404


def test_pages_send_security_headers(world, client_for):
    response = client_for("acme").get("/staff/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
