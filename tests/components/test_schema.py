"""The one normalisation of raw categorical values (components.schema.normalise_category)."""

import math

import pytest

from components import schema
from components.ingest import clean
from components.schema import BY_NAME, FEATURES, normalise_category
from components.synthetic import generate


def _spellings(category: str) -> list[str]:
    """Spellings of ``category`` a real export or client sends: case, outer and inner whitespace."""
    spaced = category.replace(" ", "  \t")
    return [category, category.lower(), category.upper(), f"  {category}\t", f"\u00a0{spaced.swapcase()} "]


@pytest.mark.parametrize("feature", [f for f in FEATURES if f.is_categorical], ids=lambda f: f.name)
def test_every_accepted_spelling_maps_to_the_canonical_category(feature):
    for category in feature.categories:
        for spelling in _spellings(category):
            assert normalise_category(feature, spelling) == category, repr(spelling)
            assert normalise_category(feature, spelling.encode()) == category, repr(spelling)


@pytest.mark.parametrize("blank", [None, "", "   ", "\t\n", float("nan"), math.nan, b" "])
def test_blank_null_and_nan_are_none(blank):
    assert normalise_category(BY_NAME["Contract"], blank) is None


def test_unknown_values_come_back_stripped_and_otherwise_unchanged():
    contract = BY_NAME["Contract"]
    assert normalise_category(contract, "  Month to  month ") == "Month to  month"
    assert normalise_category(contract, "Bitcoin") == "Bitcoin"
    assert normalise_category(contract, 3) == "3"
    assert normalise_category(contract, "Bitcoin") not in contract.categories


def test_ingest_cleans_every_spelling_to_the_same_rows():
    raw = generate(len(_spellings("x")) * 8, seed=5, with_truth=False).astype(str)
    canonical = clean(raw).data
    respelled = raw.copy()
    for feature in (f for f in FEATURES if f.is_categorical):
        respelled[feature.name] = [
            _spellings(value)[i % len(_spellings(value))] for i, value in enumerate(raw[feature.name])
        ]
    cleaned = clean(respelled)
    assert cleaned.quarantine.empty, cleaned.quarantine[["source_row", "quarantine_reason"]].to_string()
    assert cleaned.data.equals(canonical)
    assert set(cleaned.data["PaymentMethod"]) <= set(schema.BY_NAME["PaymentMethod"].categories)
