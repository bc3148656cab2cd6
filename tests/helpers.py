"""Plain helpers and constants the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

# werkzeug's cheapest method: the tests make hundreds of accounts, and scrypt costs ~0.1 s
# each. The app's default (scrypt) keeps tests of its own in tests/unit/test_accounts.py.
FAST_HASH_METHOD = "pbkdf2:sha256:1"
