"""The README tells a new user what they need on the first day: how to pick the port, and the
sandbox's test numbers, every one the sandbox knows (checked against the sandbox itself)."""

from __future__ import annotations

import re
from pathlib import Path

from clientpay_connect.pay.processor import BANK_OUTCOMES, CARD_OUTCOMES, DECLINE_MESSAGES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def digits_in_readme() -> str:
    # Card numbers are written in groups of four, as people type them.
    return re.sub(r"(?<=\d) (?=\d)", "", README)


def test_the_readme_says_how_to_choose_the_port():
    assert "make run PORT=" in README
    assert re.search(r"^PORT \?= 6543$", (ROOT / "Makefile").read_text(), re.M)


def test_the_readme_lists_every_sandbox_test_number_with_its_outcome():
    text = digits_in_readme()
    assert "4242424242424242" in text
    for number, outcome in CARD_OUTCOMES.items():
        row = next((line for line in text.splitlines() if f"`{number}`" in line), "")
        assert row, number
        if outcome in DECLINE_MESSAGES:
            assert outcome in row
    for (routing, account), outcome in BANK_OUTCOMES.items():
        row = next((line for line in text.splitlines() if f"`{account}`" in line), "")
        assert f"`{routing}`" in row and outcome in row
