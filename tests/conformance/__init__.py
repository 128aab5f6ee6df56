"""One suite per boundary with more than one implementation (Kinto's pattern, as
tests/unit/test_throttle.py does for the rate limiter): every implementation runs the same
tests, so a new one proves itself by being added to its suite's parameters."""
