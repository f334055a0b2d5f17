"""What the test servers (``rattan.testing.postgres``, ``rattan.testing.redis``) share: a server
that cannot be had skips its tests, saying why, or fails them when the environment requires it (CI
sets ``RATTAN_REQUIRE_POSTGRES=1`` / ``RATTAN_REQUIRE_REDIS=1``)."""

from __future__ import annotations

import os
from typing import NoReturn


def unavailable(server: str, env_require: str, why: str) -> NoReturn:
    import pytest

    if os.environ.get(env_require) == "1":
        pytest.fail(f"{server} is required ({env_require}=1): {why}", pytrace=False)
    pytest.skip(f"no {server} for these tests: {why}")
