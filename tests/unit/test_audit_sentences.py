"""Every action the code writes to the audit log reads as a sentence on the admin's Recent
changes, not as the developer's name for it ("user: signed out everywhere")."""

from __future__ import annotations

import re
from pathlib import Path

from clientpay_connect.admin.present import SENTENCES

PACKAGE = Path(__file__).resolve().parents[2] / "clientpay_connect"
# audit(request, "user.created", …) and record(dbsession, firm_id, "user.created", …).
RECORDED = re.compile(
    r"""\b(?:audit\(\s*request\s*,|record\(\s*[^,()]+,\s*[^,()]+,)\s*"([a-z_]+\.[a-z_]+)\"""",
)


def recorded_actions() -> set[str]:
    return {
        action
        for path in PACKAGE.rglob("*.py")
        for action in RECORDED.findall(path.read_text(encoding="utf-8"))
    }


def test_the_scan_finds_the_actions_it_should():
    assert {"user.created", "settings.updated", "user.signed_out_everywhere"} <= recorded_actions()


def test_every_recorded_action_has_a_sentence():
    assert sorted(recorded_actions() - set(SENTENCES)) == []
