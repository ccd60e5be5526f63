"""Queries compiled to SQL once per database and then run with a new parameter value each time.

The ORM builds and compiles a query anew on every evaluation. For a query that runs on every request and never
changes shape (the API token lookup), that cost 0.4-0.8 ms here, 6-10x the time the database took to answer it
(docs/performance.md). A CompiledQuery keeps the ORM's SQL and the ORM's value converters (aware datetimes on SQLite,
booleans, JSON), so what it returns is what `values_list()` would have returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

# Stands for the parameter while the query is compiled; never sent to a database.
_PLACEHOLDER = "forge-compiled-query-parameter-7f3a9c"


class CompiledQuery:
    """`build(value)` returns a values_list() queryset in which `value` (a string) appears once, as the right-hand
    side of an exact lookup on a text column. `rows(v)` then returns `list(build(v))` without building or compiling
    it again."""

    def __init__(self, build: Callable[[str], QuerySet[Any, Any]]) -> None:
        self._build = build
        self._compiled: dict[str, tuple[str, tuple[Any, ...], int, list[tuple[int, list[Any], Any]]]] = {}

    def rows(self, value: str, *, using: str = DEFAULT_DB_ALIAS) -> list[tuple[Any, ...]]:
        compiled = self._compiled.get(using)
        if compiled is None:
            compiled = self._compiled[using] = self._compile(using)
        sql, params, position, converters = compiled
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, (*params[:position], value, *params[position + 1 :]))
            rows = cursor.fetchall()
        if not converters:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for index, functions, expression in converters:
                for convert in functions:
                    values[index] = convert(values[index], expression, connection)
            out.append(tuple(values))
        return out

    def _compile(self, using: str) -> tuple[str, tuple[Any, ...], int, list[tuple[int, list[Any], Any]]]:
        compiler = self._build(_PLACEHOLDER).query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        positions = [n for n, param in enumerate(params) if param == _PLACEHOLDER]
        if len(positions) != 1:
            raise ValueError(f"the query must take its value as one parameter, as it is; its parameters: {params!r}")
        selected = [expression for expression, _sql, _alias in compiler.select]
        converters = [
            (index, functions, expression)
            for index, (functions, expression) in sorted(compiler.get_converters(selected).items())
        ]
        return sql, tuple(params), positions[0], converters
