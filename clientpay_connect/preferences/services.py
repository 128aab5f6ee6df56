"""A user's own preferences: kept on the user's row, one JSON object of top-level keys.

What a key may hold is the API document's business (openapi.yaml beside this file): it is
checked there, whole, before anything here runs, so this module only merges and stores.
"""

from __future__ import annotations

import json
from typing import Any

from clientpay_connect.accounts.models import User
from clientpay_connect.api.errors import FieldErrors

# The stored preferences of one user, at most. The document's bounds keep any one request far
# below this (a test builds the largest document it admits); the cap is here for the keys
# that later features add, so that no combination of them grows a user's row without end.
MAX_PREFERENCES_BYTES = 32 * 1024


# The keys the API document describes (the properties of its Preferences schema). A key saved
# by something else (a later version, a host) is kept but not answered: the answer is exactly
# what the document says.
API_KEYS = ("sent_grid",)


def preferences_of(user: User) -> dict[str, Any]:
    return dict(user.preferences or {})


def preferences_json(preferences: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in preferences.items() if key in API_KEYS}


def save_preferences(user: User, changes: dict[str, Any]) -> dict[str, Any]:
    """Replace the top-level keys given in ``changes`` and keep the others; the result."""
    tidied = {key: _tidy(key, value) for key, value in changes.items()}
    merged = {**preferences_of(user), **tidied}
    size = len(json.dumps(merged, separators=(",", ":")).encode("utf-8"))
    if size > MAX_PREFERENCES_BYTES:
        message = f"The preferences would take {size} bytes; at most {MAX_PREFERENCES_BYTES}."
        raise FieldErrors([{"field": "", "message": message}], message)
    # A new object, not a change inside the old one: the JSON column notices only assignment.
    user.preferences = merged
    return merged


def _tidy(key: str, value: Any) -> Any:
    if key == "sent_grid" and isinstance(value, dict) and "columns" in value:
        return {**value, "columns": _first_of_each_field(value["columns"])}
    return value


def _first_of_each_field(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A column listed twice keeps its first entry: a grid shows each field once."""
    seen: set[str] = set()
    kept = []
    for column in columns:
        if column["field"] not in seen:
            seen.add(column["field"])
            kept.append(column)
    return kept
