"""Cheap password hashing for the tests' own processes, never production's.

Production hashes with pwdlib's recommended argon2id (64 MiB, 3 passes, 4 lanes: about
half a second of CPU on the test machines), and the suite creates and signs in hundreds
of users. Tests that are not about the hash's cost use the same argon2id with the
smallest parameters: the same format, the same verify path, microseconds a hash.
`tests/auth/test_password_cost.py` checks, in a fresh interpreter, that production
still hashes with the recommended parameters.

OTKLIK_TEST_REAL_HASHING=1 keeps production's parameters (to measure what this saves).

`python -m tests.hashing <otklik arguments>` runs the `otklik` command with cheap
hashing, for tests that start their own server or demo (the browser tests' server).
"""

from __future__ import annotations

import os
import runpy

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

CHEAP = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)


def cheapen() -> None:
    if os.environ.get("OTKLIK_TEST_REAL_HASHING") == "1":
        return
    from app.auth import service

    service._hasher = PasswordHash((CHEAP,))
    service._DUMMY_HASH = None  # made again, cheaply, on first use


if __name__ == "__main__":
    cheapen()
    runpy.run_module("app.cli", run_name="__main__", alter_sys=True)
