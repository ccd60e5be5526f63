"""With DEBUG off (the default), errors show Forge's own pages and nothing of the server's insides."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

DEBUG_PAGE_MARKS = ("Traceback", "URLconf", "DEBUG = True", "REDIS_URL", "SECRET_KEY", "/srv/forge")


def test_an_unknown_page_gets_forges_404_page(client: Client, engineer) -> None:
    client.force_login(engineer)
    response = client.get("/registry/no/such/page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "Nothing here" in text and 'href="/static/css/forge.css"' in text
    assert not any(mark in text for mark in DEBUG_PAGE_MARKS)


@pytest.mark.urls("tests.forge_site.error_urls")
def test_a_server_error_gets_forges_500_page_without_details() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something went wrong on our side" in text and 'href="/static/css/forge.css"' in text
    assert not any(mark in text for mark in DEBUG_PAGE_MARKS)


def test_a_request_for_a_host_it_does_not_serve_gets_forges_400_page() -> None:
    response = Client(raise_request_exception=False, HTTP_HOST="evil.example").get("/accounts/login/")
    assert response.status_code == 400
    assert "This request could not be read" in response.content.decode()


def test_static_files_are_served_with_debug_off(client: Client, settings) -> None:
    assert settings.DEBUG is False
    response = client.get("/static/css/forge.css")
    assert response.status_code == 200
    assert b".error-page" in b"".join(response.streaming_content)
