"""The examples in the public docstrings run and print what they claim."""

import doctest

import numpy as np
import pytest

import fastops
import fastops.langevin
import fastops.orthogonality
import fastops.random
import fastops.rank_one
import fastops.smooth


@pytest.mark.parametrize("module", [fastops.smooth, fastops.orthogonality, fastops.rank_one,
                                    fastops.langevin, fastops.random, fastops._dispatch,
                                    fastops._threads],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"np": np, "fastops": fastops},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_public_function_documents_formula_and_example():
    for name in fastops.__all__:
        doc = getattr(fastops, name).__doc__ or ""
        assert ">>>" in doc, f"{name} has no example"
        assert len(doc.splitlines()) >= 3, f"{name} docstring is too short"
