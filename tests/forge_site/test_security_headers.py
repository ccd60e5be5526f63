"""Every page carries the Content-Security-Policy and the other security headers, in both profiles."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def directives(header: str) -> dict[str, list[str]]:
    parts = [part.strip().split() for part in header.split(";") if part.strip()]
    return {part[0]: part[1:] for part in parts}


def test_pages_allow_only_this_origin_and_nothing_inline(client: Client, engineer) -> None:
    client.force_login(engineer)
    response = client.get("/registry/")
    policy = directives(response["Content-Security-Policy"])
    for directive in ("default-src", "script-src", "style-src", "img-src", "font-src", "connect-src", "form-action"):
        assert policy[directive] == ["'self'"], directive
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # make run is plain HTTP on loopback


def test_the_api_docs_add_only_data_images_for_swagger_ui_icons(client: Client) -> None:
    policy = directives(client.get("/api/docs/")["Content-Security-Policy"])
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["script-src"] == policy["style-src"] == ["'self'"]


def test_the_login_page_and_the_error_pages_carry_the_policy(client: Client) -> None:
    for url, status in [("/accounts/login/", 200), ("/no/such/page/", 404)]:
        response = client.get(url)
        assert response.status_code == status
        assert "script-src 'self'" in response["Content-Security-Policy"]
