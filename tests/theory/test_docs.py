"""docs/theory.md is generated from the derivation objects and must match what the generator writes now."""

from pathlib import Path

from fls.theory.docs import render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "theory.md"


def test_theory_page_is_up_to_date():
    assert PAGE.read_text() == render(), "docs/theory.md is stale: run `python -m fls.theory.docs docs/theory.md`"


def test_theory_page_shows_the_derived_facts():
    text = render()
    assert r"\frac{c v_{p} x_{iq} y_{i} \sigma\left(- f y_{i}\right) \theta\left(P, 0\right)}{n}" in text
    assert r"\right) = 0" in text  # the conserved quantity's rate
