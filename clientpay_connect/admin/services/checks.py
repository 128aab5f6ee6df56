"""What every admin area checks its input with: the collected field errors, names, lengths and
whole numbers, and the firm-scoped lookup that makes another firm's row "not found"."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from clientpay_connect.api.errors import FieldErrors, not_found
from clientpay_connect.db import Base

MAX_NAME_LENGTH = 200
MAX_KEY_LENGTH = 200

Row = TypeVar("Row", bound=Base)


class Problems:
    """Field errors collected while checking input, raised together as one 422."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def raise_if_any(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


def firm_row(dbsession: Session, model: type[Row], firm: int, row_id: int) -> Row:
    row = dbsession.get(model, row_id)
    if row is None or getattr(row, "firm_id", None) != firm:
        raise not_found()
    return row


def clean_text(value: Any) -> str:
    return str(value if value is not None else "").strip()


def check_name(problems: Problems, field: str, name: str, required: bool = True) -> None:
    if required and not name:
        problems.add(field, "Enter a name.")
    elif len(name) > MAX_NAME_LENGTH:
        problems.add(field, f"Use at most {MAX_NAME_LENGTH} characters.")


def check_length(problems: Problems, field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        problems.add(field, f"Use at most {limit} characters.")


def whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = clean_text(value)
    # isdecimal, not isdigit: "²" is a digit that int() refuses; the length cap keeps int()
    # away from its limit on huge strings.
    return int(text) if text.isdecimal() and len(text) <= 9 else None
