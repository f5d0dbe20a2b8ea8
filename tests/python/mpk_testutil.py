"""Shared constants for the mpk tests (a uniquely named module, so that it
does not clash with other suites' conftest.py)."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FIXTURES = os.environ.get("MPK_FIXTURES", "/work/shared/fixtures")
if not os.path.isdir(FIXTURES):
    FIXTURES = os.path.join(REPO, "tests", "fixtures")
