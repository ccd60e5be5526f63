"""Site pages: home."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from forge_site.roles import require_action


@require_action("site.home")
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "forge_site/home.html", {})
