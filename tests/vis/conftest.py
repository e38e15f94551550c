"""Fixtures of the visualisation tests: one synthetic case on disk, shared by the whole session."""

import pytest

from tests.vis._synthetic import write_case


@pytest.fixture(scope="session")
def case(tmp_path_factory):
    """Paths of the synthetic fixed/moving/warped images, labels and folding DDF (see ``_synthetic``)."""
    return write_case(tmp_path_factory.mktemp("vis_case"))
