"""The suite hashes passwords cheaply (tests/hashing.py); production must not."""

from __future__ import annotations

import os
import subprocess
import sys

from app.auth import service

# "correct horse", hashed by production's hasher.
PRODUCTION_HASH = "$argon2id$v=19$m=65536,t=3,p=4$K3oqXaaNnpUmxylqhH9VIQ$9cbfWJtVCbt72F0hHIz8HnXQV3Rt1dQZFswdOC+mJrQ"


def test_production_hashes_with_the_recommended_argon2id() -> None:
    # A fresh interpreter: this process's hasher is the tests' cheap one.
    code = "from app.auth import service; print(service.hash_password('x'))"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert done.stdout.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), done.stdout


def test_the_suite_hashes_cheaply_and_still_verifies_production_hashes() -> None:
    cheap = service.hash_password("correct horse")
    if os.environ.get("OTKLIK_TEST_REAL_HASHING") != "1":
        assert cheap.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert service.verify_password("correct horse", cheap)
    assert not service.verify_password("wrong horse", cheap)
    # A hash made with production's parameters (a demo database) still signs in.
    assert service.verify_password("correct horse", PRODUCTION_HASH)
    assert not service.verify_password("wrong horse", PRODUCTION_HASH)
