"""The report tests use the scan tests' folder of pictures."""

from tests.scan.conftest import pristine_tree  # noqa: F401 - fixture
