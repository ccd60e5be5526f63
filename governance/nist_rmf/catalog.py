"""The NIST AI RMF 1.0 core as data: 4 functions, 19 categories, 72 subcategories, with NIST's own statements.

The statements are NIST AI 100-1 (January 2023), Tables 1-4, word for word; `ai_rmf_1_0.json` names the source.
A new edition of the framework is a new data file and a new CATALOG_ID, never an edit of this one: finalized
reports name the catalog they were written against. Pure: no Django.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_ID = "nist-ai-rmf-1.0"
CATALOG_FILE = Path(__file__).with_name("ai_rmf_1_0.json")
FUNCTION_IDS = ("GOVERN", "MAP", "MEASURE", "MANAGE")

_SUB_ID = re.compile(r"^(GOVERN|MAP|MEASURE|MANAGE)[ -](\d{1,2})\.(\d{1,2})$")


@dataclass(frozen=True)
class Subcategory:
    id: str  # "GOVERN 1.1", as NIST writes it
    statement: str
    category_id: str  # "GOVERN 1"
    function_id: str  # "GOVERN"

    @property
    def slug(self) -> str:
        """The form a URL carries: GOVERN-1.1."""
        return self.id.replace(" ", "-")


@dataclass(frozen=True)
class Category:
    id: str
    statement: str
    function_id: str
    subcategories: tuple[Subcategory, ...]


@dataclass(frozen=True)
class Function:
    id: str
    name: str
    statement: str
    table: str
    categories: tuple[Category, ...]

    @property
    def subcategories(self) -> tuple[Subcategory, ...]:
        return tuple(sub for category in self.categories for sub in category.subcategories)


@dataclass(frozen=True)
class Catalog:
    id: str
    title: str
    source: dict[str, str]
    functions: tuple[Function, ...]

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(category for function in self.functions for category in function.categories)

    @property
    def subcategories(self) -> tuple[Subcategory, ...]:
        return tuple(sub for function in self.functions for sub in function.subcategories)

    def subcategory(self, sub_id: str) -> Subcategory:
        """By ID in either form ("GOVERN 1.1" or "GOVERN-1.1"); KeyError naming it when there is none."""
        wanted = normalize_sub_id(sub_id)
        for sub in self.subcategories:
            if sub.id == wanted:
                return sub
        raise KeyError(f"{sub_id!r} is not a subcategory of {self.id}")

    def category(self, category_id: str) -> Category:
        for category in self.categories:
            if category.id == category_id:
                return category
        raise KeyError(f"{category_id!r} is not a category of {self.id}")

    def source_line(self) -> str:
        return f"{self.source['document']}, {self.source['publisher']}, {self.source['date']} ({self.source['doi']})"


def normalize_sub_id(sub_id: str) -> str:
    """'GOVERN-1.1', 'govern 1.1' -> 'GOVERN 1.1'; ValueError for anything that is not shaped like an ID."""
    match = _SUB_ID.match(str(sub_id).strip().upper())
    if match is None:
        raise ValueError(f"{str(sub_id)[:40]!r} is not a subcategory ID like GOVERN-1.1 or MEASURE 2.7")
    return f"{match[1]} {int(match[2])}.{int(match[3])}"


def _build(raw: dict[str, Any]) -> Catalog:
    functions = []
    for f in raw["functions"]:
        categories = []
        for c in f["categories"]:
            subs = tuple(
                Subcategory(id=s["id"], statement=s["statement"], category_id=c["id"], function_id=f["id"])
                for s in c["subcategories"]
            )
            categories.append(Category(id=c["id"], statement=c["statement"], function_id=f["id"], subcategories=subs))
        functions.append(
            Function(
                id=f["id"], name=f["name"], statement=f["statement"], table=f["table"], categories=tuple(categories)
            )
        )
    return Catalog(id=raw["catalog"], title=raw["title"], source=dict(raw["source"]), functions=tuple(functions))


@cache
def catalog() -> Catalog:
    """The catalog, read once per process."""
    return _build(json.loads(CATALOG_FILE.read_text(encoding="utf-8")))
