"""Fixtures shared with the access matrix: one person per role and real objects for every URL."""

from tests.test_access_matrix import world  # noqa: F401  (a fixture)
