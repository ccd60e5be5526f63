"""The site's URLs plus one view that fails, to see the 500 page a user gets."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from forge_site.urls import urlpatterns as site_urlpatterns


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret detail: /srv/forge/var and redis://10.0.0.5:6379/0")


urlpatterns = [*site_urlpatterns, path("boom/", fail)]
