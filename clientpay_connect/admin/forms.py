"""What the admin views share: reading forms, showing the services' errors, one-time secrets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from pyramid.httpexceptions import HTTPNotFound
from pyramid.request import Request
from webob.multidict import MultiDict

from clientpay_connect.api.errors import ApiError

T = TypeVar("T")

# A status for a form sent back with mistakes, like the sign-in page's.
INVALID_FORM = 400
_REVEAL_KEY = "admin.reveal_once"


def iso_utc(moment: dt.datetime | None) -> str | None:
    """A timestamp as the API writes it: ISO 8601 in UTC."""
    return moment.astimezone(dt.UTC).isoformat() if moment is not None else None


def errors_by_field(error: ApiError) -> dict[str, str]:
    """The first message for each field; one without a field goes under "" (the whole form)."""
    messages: dict[str, str] = {}
    for item in error.errors:
        messages.setdefault(item.get("field", ""), item.get("message", ""))
    if not messages:
        messages[""] = error.message
    return messages


def form_text(post: MultiDict, name: str) -> str:
    value = post.get(name, "")
    return value if isinstance(value, str) else ""


def form_checked(post: MultiDict, name: str) -> bool:
    return name in post


def form_choices(post: MultiDict, name: str) -> list[str]:
    return [value for value in post.getall(name) if isinstance(value, str)]


def matched_id(request: Request) -> int:
    # Routes only match digits, so this cannot fail for a request that reached a view.
    return int(request.matchdict["id"])


def found(lookup: Callable[[], T]) -> T:
    """Run a service lookup, turning its API "not found" into the HTML 404 page."""
    try:
        return lookup()
    except ApiError as error:
        if error.status == 404:
            raise HTTPNotFound() from error
        raise


def stash_for_reveal(request: Request, kind: str, target_id: int, secret: str) -> None:
    """Keep ``secret`` for the next page to show once.

    The session is a signed (readable) cookie, so the secret travels in it encrypted, and only
    until the page that shows it has been opened: after a redirect, so a reload cannot repeat
    the change.
    """
    request.session[_REVEAL_KEY] = {
        "kind": kind,
        "id": target_id,
        "secret": request.encryptor.encrypt(secret),
    }


def pop_revealed(request: Request, kind: str, target_id: int) -> str | None:
    stashed: Any = request.session.get(_REVEAL_KEY)
    if not isinstance(stashed, dict) or (stashed.get("kind"), stashed.get("id")) != (
        kind,
        target_id,
    ):
        return None
    del request.session[_REVEAL_KEY]
    secret: str = request.encryptor.decrypt(stashed["secret"])
    return secret
