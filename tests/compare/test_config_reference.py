"""docs/config.md is made from the config schema (compare.config_reference) and is up to date; every key the
checks accept is on it."""

from pathlib import Path

from fls.compare.config_reference import main, render
from fls.compare.config_schema import TABLES, data_fields
from fls.simulate.data import MODELS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_config_page_is_up_to_date():
    assert PAGE.read_text() == render(), (
        "docs/config.md is stale: run `python -m fls.compare.config_reference docs/config.md`"
    )


def test_every_key_is_on_the_page_with_its_range():
    text = render()
    keys = [f"{section}.{key}" for section, fields in TABLES.items() for key in fields]
    keys += [f"data.{key}" for model in MODELS for key in data_fields(model)]
    missing = [key for key in keys if f"| `{key}` |" not in text]
    assert not missing
    assert "| `model.width` | integer | `100` | integer >= 1 | hidden width m |" in text
    assert "| `data.balanced` | boolean (true or false) | `false` | true, false |" in text


def test_main_writes_the_page(tmp_path):
    main([str(tmp_path / "config.md")])
    assert (tmp_path / "config.md").read_text() == render()
