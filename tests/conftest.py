"""Shared by every test folder: the hypothesis profiles."""

from __future__ import annotations

import os

from hypothesis import settings

# ------------------------------------------------------------------------------------------- hypothesis

# Few examples for a quick local run, the full count in CI: `make test` (and so .ci/run) sets
# HYPOTHESIS_PROFILE=ci. No deadline in either: speed is never asserted in tests, and the CI box is shared.
CI_EXAMPLES = 2000
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=CI_EXAMPLES, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def scaled(ci_count: int) -> int:
    """``max_examples`` for a property that runs ``ci_count`` examples in CI (fewer than the profile's,
    as each costs more) and the same share of the profile elsewhere: 500 in CI is 25 in "dev"."""
    return max(10, ci_count * settings().max_examples // CI_EXAMPLES)
