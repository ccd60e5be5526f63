"""Page-number pagination: pages given as whole numbers only, and (Lazy...) the page as an unevaluated, sliced
queryset."""

from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class ForgePageNumberPagination(PageNumberPagination):
    """DRF's PageNumberPagination, except that an empty `?page=` is an invalid page (404, like `?page=abc`) instead of
    page 1: the schema says `page` is an integer, and the server does what the schema says."""

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not raw.strip():
            raise NotFound("Invalid page '': give a page number (the first page is 1).")
        return super().get_page_number(request, paginator)


class LazyPageNumberPagination(ForgePageNumberPagination):
    """Like DRF's PageNumberPagination (same query parameters and response), but `paginate_queryset` returns the
    page's sliced queryset instead of a list of instances, so a list view can read plain values() rows and use
    the page as a subquery. The count runs on the queryset as given, so give it one without extra joins."""

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        # DRF reads an empty `?page=` as page 1; the schema's page is an integer, so "" is refused as any other
        # non-number would be by the schema.
        if request.query_params.get(self.page_query_param, None) == "":
            raise ValidationError({self.page_query_param: ["A page number is required when `page` is given."]})
        return super().get_page_number(request, paginator)

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> Any:
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        paginator = self.django_paginator_class(queryset, page_size)
        page_number = self.get_page_number(request, paginator)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as exc:
            raise NotFound(f"Invalid page {page_number!r}: {exc}") from exc
        self.request = request
        return self.page.object_list
