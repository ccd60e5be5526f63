"""The NIST AI RMF 1.0 catalog as data: 4 functions, 19 categories, 72 subcategories, NIST's own words."""

from __future__ import annotations

import json

import pytest

from governance.nist_rmf.catalog import CATALOG_FILE, catalog, normalize_sub_id
from governance.nist_rmf.mapping import RULES, Kind

# ../shared/NIST_AI_RMF_1.0_IDS.md (from NIST AI 100-1, Tables 1-4): function -> {category: last subcategory}
EXPECTED = {
    "GOVERN": {1: 7, 2: 3, 3: 2, 4: 3, 5: 2, 6: 2},
    "MAP": {1: 6, 2: 3, 3: 5, 4: 2, 5: 2},
    "MEASURE": {1: 3, 2: 13, 3: 3, 4: 3},
    "MANAGE": {1: 4, 2: 4, 3: 2, 4: 3},
}
EXPECTED_IDS = [
    f"{function} {category}.{n}"
    for function, categories in EXPECTED.items()
    for category, last in categories.items()
    for n in range(1, last + 1)
]


def test_it_has_4_functions_19_categories_and_72_subcategories():
    cat = catalog()
    assert [f.id for f in cat.functions] == ["GOVERN", "MAP", "MEASURE", "MANAGE"]
    assert len(cat.categories) == 19
    assert len(cat.subcategories) == 72
    assert [len(f.subcategories) for f in cat.functions] == [19, 18, 22, 13]


def test_every_id_matches_the_shared_list_in_order():
    assert len(EXPECTED_IDS) == 72
    assert [sub.id for sub in catalog().subcategories] == EXPECTED_IDS
    assert [c.id for c in catalog().categories] == [
        f"{function} {category}" for function, categories in EXPECTED.items() for category in categories
    ]


def test_statements_are_nists_words():
    cat = catalog()
    # Third-party copies reword GOVERN 1.1; NIST AI 100-1 Table 1 says exactly this.
    assert cat.subcategory("GOVERN 1.1").statement == (
        "Legal and regulatory requirements involving AI are understood, managed, and documented."
    )
    assert cat.subcategory("MEASURE 2.11").statement == (
        "Fairness and bias \u2013 as identified in the MAP function \u2013 are evaluated and results are documented."
    )
    assert cat.subcategory("MANAGE 4.3").statement.startswith(
        "Incidents and errors are communicated to relevant AI actors, including affected communities."
    )
    assert cat.category("MAP 1").statement == "Context is established and understood."
    for sub in cat.subcategories:
        text = sub.statement
        assert text[0].isupper() and text.endswith("."), sub.id
        # no line-break hyphenation left over from the PDF (e.g. "communi-cation")
        assert not any(part in text for part in ("communi-", "re-sponsibility", "iden-tified", "sys-tem")), sub.id


def test_the_data_file_names_its_source():
    raw = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    assert raw["catalog"] == "nist-ai-rmf-1.0"
    assert "NIST AI 100-1" in raw["source"]["document"]
    assert raw["source"]["doi"] == "https://doi.org/10.6028/NIST.AI.100-1"
    assert raw["source"]["date"] == "2023-01"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("GOVERN-1.1", "GOVERN 1.1"), ("govern 1.1", "GOVERN 1.1"), ("MEASURE-2.13", "MEASURE 2.13")],
)
def test_it_reads_a_subcategory_id_in_either_form(raw, expected):
    assert normalize_sub_id(raw) == expected
    assert catalog().subcategory(raw).slug == expected.replace(" ", "-")


@pytest.mark.parametrize("raw", ["GOVERN", "GOVERN-1", "GOVERN 1.1; DROP", "X 1.1", ""])
def test_it_refuses_what_is_not_an_id(raw):
    with pytest.raises(ValueError, match="is not a subcategory ID"):
        normalize_sub_id(raw)


def test_an_id_shaped_like_one_but_absent_is_a_key_error():
    with pytest.raises(KeyError, match=r"GOVERN-1\.8"):
        catalog().subcategory("GOVERN-1.8")


def test_the_mapping_names_only_real_subcategories_and_every_kind_is_used():
    ids = {sub.id for sub in catalog().subcategories}
    assert set(RULES) <= ids
    used = {kind for rule in RULES.values() for kind in rule.kinds}
    assert used == set(Kind)
    # what the issue names is mapped
    for sub_id in (
        "GOVERN 1.6",
        "MAP 4.1",
        "MEASURE 2.7",
        "MEASURE 2.1",
        "MEASURE 2.4",
        "MEASURE 3.1",
        "MANAGE 4.1",
        "MEASURE 2.11",
        "MANAGE 2.4",
        "MEASURE 2.8",
    ):
        assert sub_id in RULES, sub_id
