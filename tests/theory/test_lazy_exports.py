"""The packages export their public names lazily (fls/lazyexports.py): same names, ``__all__`` and ``dir()``."""

import importlib

import pytest

PACKAGES = ["fls", "fls.theory", "fls.simulate", "fls.simulate.flow", "fls.simulate.train"]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_and_is_listed(name):
    package = importlib.import_module(name)
    assert len(set(package.__all__)) == len(package.__all__)
    assert set(package.__all__) <= set(dir(package))
    for public in package.__all__:
        assert getattr(package, public) is not None


@pytest.mark.parametrize("name", PACKAGES)
def test_an_unknown_name_is_an_attribute_error_naming_it(name):
    package = importlib.import_module(name)
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_from_import_gives_the_defining_objects():
    from fls.simulate import integrate_flow, make_data
    from fls.simulate.data import make_data as defined
    from fls.simulate.flow.api import integrate_flow as engine
    from fls.theory import LOSSES, vector_field
    from fls.theory.compiled import vector_field as compiled

    assert make_data is defined and integrate_flow is engine and vector_field is compiled
    assert LOSSES == ("logistic", "exponential", "squared")


def test_the_entry_points_of_the_design_are_exported():
    """docs/design.md section 7 names these; they must stay importable from the packages."""
    import fls.simulate
    import fls.theory

    assert {"vector_field", "tangent_kernel", "compile_field", "derive", "LOSSES"} <= set(fls.theory.__all__)
    assert {"make_data", "init_params", "integrate_flow", "train_ensemble"} <= set(fls.simulate.__all__)
