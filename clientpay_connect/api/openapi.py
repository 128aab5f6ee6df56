"""Requests to views marked ``openapi=True`` are validated against api/openapi.yaml.

We drive openapi-core ourselves rather than through pyramid_openapi3's includeme because the
add-on may be included under a route prefix (the spec's server URL must follow it), the
contract wants 422 in our error shape, and the document is served as JSON.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.unmarshalling.request.unmarshallers import V30RequestParametersUnmarshaller
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid_openapi3.wrappers import PyramidOpenAPIRequest, PyramidOpenAPIResponse

from clientpay_connect.api.errors import ApiError, FieldErrors
from clientpay_connect.api.json_body import NUL_MESSAGE, is_json, read_json_body
from clientpay_connect.config import as_bool

SPEC_PATH = Path(__file__).with_name("openapi.yaml")
# Each feature folder documents its own endpoints in an openapi.yaml beside its views
# (``paths`` and ``components.schemas``); they are merged into the base document.
FEATURE_SPECS = sorted(Path(__file__).parent.parent.glob("*/openapi.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle) or {}
    return data


def load_spec(route_prefix: str) -> dict[str, Any]:
    spec = copy.deepcopy(_read_yaml(SPEC_PATH))
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    paths = spec.setdefault("paths", {}) or {}
    spec["paths"] = paths
    for fragment_path in FEATURE_SPECS:
        if fragment_path == SPEC_PATH:
            continue
        fragment = _read_yaml(fragment_path)
        for name, item in (fragment.get("paths") or {}).items():
            if name in paths:
                raise ValueError(f"{fragment_path}: path {name} is documented twice")
            paths[name] = item
        for name, schema in ((fragment.get("components") or {}).get("schemas") or {}).items():
            if name in schemas:
                raise ValueError(f"{fragment_path}: schema {name} is defined twice")
            schemas[name] = schema
    add_shared_responses(spec)
    # Pyramid keeps an include's route prefix without its slashes ("payments"); the server URL
    # must be absolute ("/payments/api/v1") or no request matches it.
    prefix = (route_prefix or "").strip("/")
    spec["servers"] = [{"url": (f"/{prefix}" if prefix else "") + "/api/v1"}]
    return spec


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


# The answers every operation may give for what its own document does not cover: how a body
# is read (body_limits, json_body), how a request is authenticated (security) and validated
# (openapi_view_deriver). Added here, once, so that no feature document can forget one.
UNREADABLE = _error(
    'The body cannot be read: not UTF-8 or not JSON (error "invalid_json"), or a multipart '
    'form without its boundary ("invalid_form")'
)
TOO_LARGE = _error('The body is larger than the address accepts (error "request_too_large")')
INVALID = _error("Some fields are wrong; each is named in errors")
UNSUPPORTED = _error('A body of a type the address does not take ("unsupported_media_type")')
UNAUTHENTICATED = _error("Not signed in and no valid API token")


def add_shared_responses(spec: dict[str, Any]) -> None:
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                _add_shared(operation, item.get("parameters") or [], spec.get("security"))


def _add_shared(
    operation: dict[str, Any], path_parameters: list[Any], security: list[Any] | None
) -> None:
    responses = operation.setdefault("responses", {})
    content = (operation.get("requestBody") or {}).get("content") or {}
    if content:
        responses.setdefault("413", TOO_LARGE)
        responses.setdefault("415", UNSUPPORTED)
        responses.setdefault("422", INVALID)
    if "application/json" in content or "multipart/form-data" in content:
        responses.setdefault("400", UNREADABLE)
    parameters = [*path_parameters, *(operation.get("parameters") or [])]
    query = [p for p in parameters if isinstance(p, dict) and p.get("in") == "query"]
    if query:
        responses.setdefault("422", INVALID)
    for parameter in query:
        schema = parameter.get("schema") or {}
        if schema.get("type") == "string" and not parameter.get("allowEmptyValue"):
            # openapi-core refuses an empty query value (OpenAPI 3.0's allowEmptyValue is
            # false by default): "?cursor=" is a 422, which the schema says.
            schema.setdefault("minLength", 1)
    if operation.get("security", security):
        responses.setdefault("401", UNAUTHENTICATED)


def field_errors(errors: Iterable[BaseException]) -> list[dict[str, str]]:
    """Flatten openapi-core's nested exceptions into field + message pairs."""
    result: list[dict[str, str]] = []
    for error in errors:
        result.extend(_flatten(error))
    return result or [{"field": "", "message": "The request does not match the API."}]


def _flatten(error: BaseException) -> list[dict[str, str]]:
    schema_errors = getattr(error, "schema_errors", None)
    if schema_errors:
        return [entry for e in schema_errors for entry in _schema_error(e)]
    cause = error.__cause__ or error.__context__
    if cause is not None and cause is not error:
        nested = _flatten(cause)
        if nested and any(e["field"] for e in nested):
            return nested
    name = getattr(error, "name", "") or ""
    return [{"field": str(name), "message": str(error)}]


# How many unknown fields of one object are named; a body could hold thousands.
MAX_UNKNOWN_FIELDS_NAMED = 20


def _schema_error(error: Any) -> list[dict[str, str]]:
    path = [str(p) for p in getattr(error, "absolute_path", [])]
    validator = getattr(error, "validator", "")
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        unknown = sorted(str(name) for name in error.instance if name not in known)
        return [
            {"field": ".".join([*path, name]), "message": "This field is not part of the API."}
            for name in unknown[:MAX_UNKNOWN_FIELDS_NAMED]
        ]
    # Not getattr(error, "message", str(error)): str() of a jsonschema error pretty-prints the
    # whole body and the schema, seconds of CPU for a large body, even when it is not used.
    message = error.message if hasattr(error, "message") else repr(error)
    if validator == "required":
        # "'amount' is a required property" names the missing field, not the path.
        missing = message.split("'")[1] if message.count("'") >= 2 else ""
        path = [*path, missing] if missing else path
        message = "This field is required."
    elif validator == "pattern" and error.validator_value == NOT_BLANK:
        message = "This cannot be blank."
    elif validator in BOUND_MESSAGES:
        # jsonschema's own message quotes the whole value, which may be 64 KB long.
        message = BOUND_MESSAGES[validator].format(error.validator_value)
    return [{"field": ".".join(path), "message": message}]


# The documents' pattern for a text that must not be blank.
NOT_BLANK = r"\S"
BOUND_MESSAGES = {
    "maxLength": "Use at most {} characters.",
    "maxItems": "Send at most {} items.",
    "minItems": "Send at least {} items.",
}


class _AppRequest(PyramidOpenAPIRequest):
    """A request's path as the app sees it, below SCRIPT_NAME: the document describes the app
    wherever a URL map mounts it (a host's route prefix is in the document's server URL)."""

    @property
    def method(self) -> str:
        return _document_method(self.request).lower()

    @property
    def path_pattern(self) -> str:
        route = self.request.matched_route
        pattern: str = route.pattern if route is not None else self.request.path_info
        return pattern


def _openapi_request(request: Request) -> Any:
    # pyramid_openapi3's wrapper fits openapi-core's Request protocol at run time; its
    # declared body type is wider than the protocol's, hence Any.
    return _AppRequest(request)


def served_document(request: Request) -> bytes:
    """The document as served: its server URL includes where the app is mounted, if it is."""
    document: bytes = request.registry["clientpay.openapi.document"]
    if not request.script_name:
        return document
    spec = request.registry["clientpay.openapi.spec"]
    servers = [{"url": request.script_name + server["url"]} for server in spec["servers"]]
    return json.dumps({**spec, "servers": servers}, indent=1).encode("utf-8")


# "{id:\d+}" in a route pattern is "{id}" in the document.
ROUTE_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _document_method(request: Request) -> str:
    """The operation a request is checked against: a HEAD is its GET without the body, as
    Pyramid serves it (a GET view answers HEAD), and the document lists no HEAD of its own."""
    return "GET" if request.method == "HEAD" else request.method


def _document_path(request: Request) -> str:
    route = request.matched_route
    pattern: str = route.pattern if route is not None else request.path_info
    return ROUTE_PLACEHOLDER.sub(r"{\1}", pattern).split("/api/v1", 1)[-1]


def multipart_operations(spec: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """(METHOD, path) of the operations whose body may be multipart/form-data (uploads)."""
    return frozenset(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        and "multipart/form-data" in ((operation.get("requestBody") or {}).get("content") or {})
    )


def _unmarshal_request(request: Request, api: OpenAPI) -> Any:
    refuse_nul_in_query(request)
    uploads = request.registry["clientpay.openapi.multipart"]
    if (
        request.content_type == "multipart/form-data"
        and (_document_method(request), _document_path(request)) in uploads
    ):
        if "boundary=" not in request.headers.get("Content-Type", "").lower():
            # WebOb cannot split such a form into its fields (it raised: a 500).
            raise ApiError(400, "invalid_form", "The multipart form has no boundary.")
        # A file is not handed to openapi-core: it parses a multipart body in memory, several
        # copies over (a 32 MB file took gigabytes). The upload views read the form streamed
        # to disk by webob and check its fields themselves; the rest is checked here.
        unmarshaller = request.registry["clientpay.openapi.parameters"]
        return unmarshaller.unmarshal(_openapi_request(request))
    if is_json(request) and request.body:
        # Refused here, with a 400 of our own, rather than by openapi-core, which fails (500)
        # to describe a body that is not UTF-8 and lets the parser recurse on a deep one.
        read_json_body(request)
    return api.unmarshal_request(_openapi_request(request))


def refuse_nul_in_query(request: Request) -> None:
    """No text anywhere may hold NUL (see json_body.NUL_MESSAGE): nor may a query's."""
    for name, value in request.GET.items():
        if "\x00" in name or "\x00" in value:
            raise FieldErrors([{"field": name.replace("\x00", ""), "message": NUL_MESSAGE}])


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# ``openapi=QUERY_CHECKED`` on a view: a GET whose whole input is its query string, which the
# view parses itself (reporting every wrong parameter as a 422). openapi-core still answers
# whenever the document's own rules cannot be seen to hold (QueryCheck), so the answers stay
# the document's; the point is the common request, which it would spend most of its time on:
# it looks at every documented parameter, present or not (GET /links documents 42).
QUERY_CHECKED = "query"
Check = Callable[[str], bool]
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DIGITS = re.compile(r"[0-9]{1,18}")
# What QueryCheck understands of a query parameter and of its schema; anything else (an
# array, a style, a format other than date) leaves the parameter to openapi-core.
PARAMETER_KEYS = frozenset({"name", "in", "description", "schema", "required", "example"})
SCHEMA_KEYS = frozenset(
    {"type", "enum", "default", "maxLength", "minLength", "pattern", "format", "minimum"}
    | {"maximum", "description", "example"}
)


@dataclass(frozen=True)
class QueryCheck:
    """What an operation's query parameters must be, as far as it can be checked in a few
    microseconds: ``passes`` is True only for a query that openapi-core accepts too (a value
    it is unsure of, a parameter given twice, a required one missing: False, and openapi-core
    decides). Parameters the document does not name are openapi-core's to ignore, and ours."""

    checks: Mapping[str, Check]
    required: frozenset[str]

    def passes(self, query: Any) -> bool:
        if any(name not in query for name in self.required):
            return False
        seen: set[str] = set()
        for name, value in query.items():
            check = self.checks.get(name)
            if check is None:
                continue
            if name in seen or not check(value):
                return False
            seen.add(name)
        return True


def query_checks(spec: dict[str, Any]) -> dict[tuple[str, str], QueryCheck]:
    """A QueryCheck for each operation whose only input is its query string."""
    found: dict[tuple[str, str], QueryCheck] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or operation.get("requestBody"):
                continue
            parameters = [*(item.get("parameters") or []), *(operation.get("parameters") or [])]
            if not all(p.get("in") == "query" for p in parameters):
                continue
            checks = {p["name"]: _value_check(p) for p in parameters}
            required = frozenset(p["name"] for p in parameters if p.get("required"))
            found[(method.upper(), path)] = QueryCheck(checks, required)
    return found


def _never(_value: str) -> bool:
    return False


def _value_check(parameter: dict[str, Any]) -> Check:
    schema = parameter.get("schema") or {}
    if set(parameter) - PARAMETER_KEYS or set(schema) - SCHEMA_KEYS:
        return _never
    if schema.get("type") == "integer" and "format" not in schema:
        return _integer_check(schema)
    if schema.get("type") == "string" and schema.get("format") in (None, "date"):
        return _string_check(schema)
    return _never


def _integer_check(schema: dict[str, Any]) -> Check:
    low, high = schema.get("minimum"), schema.get("maximum")
    enum = schema.get("enum")

    def check(value: str) -> bool:
        # ASCII digits only: int() would also take " 7", "+7" and other scripts' digits.
        if not DIGITS.fullmatch(value):
            return False
        number = int(value)
        return (
            (low is None or number >= low)
            and (high is None or number <= high)
            and (enum is None or number in enum)
        )

    return check


def _string_check(schema: dict[str, Any]) -> Check:
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    enum = frozenset(schema["enum"]) if "enum" in schema else None
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    is_date = schema.get("format") == "date"

    def check(value: str) -> bool:
        # Printable only: no line break for a pattern's "$" to differ on between regex
        # engines, no NUL (refused before this anyway).
        return (
            value.isprintable()
            and len(value) >= shortest
            and (longest is None or len(value) <= longest)
            and (enum is None or value in enum)
            and (pattern is None or pattern.search(value) is not None)
            and (not is_date or _is_day(value))
        )

    return check


def _is_day(value: str) -> bool:
    if not ISO_DAY.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _query_checked(request: Request) -> bool:
    """True when QueryCheck can vouch for this request (see QUERY_CHECKED)."""
    if request.body:
        return False
    checks: dict[tuple[str, str], QueryCheck] = request.registry["clientpay.openapi.queries"]
    check = checks.get((_document_method(request), _document_path(request)))
    return check is not None and check.passes(request.GET)


def openapi_view_deriver(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    mode = info.options.get("openapi")
    if not mode:
        return view

    def validating_view(context: Any, request: Request) -> Any:
        api: OpenAPI = request.registry["clientpay.openapi"]
        if mode == QUERY_CHECKED:
            refuse_nul_in_query(request)
            if _query_checked(request):
                # Nothing for the view to read here: it parses its query itself.
                request.openapi_validated = None
                return _respond(view, context, request, api)
        result = _unmarshal_request(request, api)
        errors = [e for e in result.errors if not isinstance(e, PathNotFound)]
        if any(_caused_by(e, MediaTypeNotFound) for e in errors):
            raise ApiError(
                415,
                "unsupported_media_type",
                f"This address does not take {request.content_type or 'a body without a type'}.",
            )
        if errors:
            raise FieldErrors(field_errors(errors))
        request.openapi_validated = result
        return _respond(view, context, request, api)

    return validating_view


def _respond(view: Callable[..., Any], context: Any, request: Request, api: OpenAPI) -> Any:
    response = view(context, request)
    if request.registry["clientpay.openapi.validate_responses"] and isinstance(response, Response):
        api.validate_response(_openapi_request(request), PyramidOpenAPIResponse(response))
    return response


openapi_view_deriver.options = ("openapi",)  # type: ignore[attr-defined]


def includeme(config: Configurator) -> None:
    spec = load_spec(config.route_prefix or "")
    config.registry["clientpay.openapi.spec"] = spec
    api = OpenAPI.from_dict(spec)
    config.registry["clientpay.openapi"] = api
    config.registry["clientpay.openapi.parameters"] = V30RequestParametersUnmarshaller(api.spec)
    config.registry["clientpay.openapi.multipart"] = multipart_operations(spec)
    config.registry["clientpay.openapi.queries"] = query_checks(spec)
    config.registry["clientpay.openapi.validate_responses"] = as_bool(
        config.get_settings()["clientpay.openapi.validate_responses"]
    )
    config.add_view_deriver(openapi_view_deriver)
    document = json.dumps(spec, indent=1).encode("utf-8")
    config.registry["clientpay.openapi.document"] = document
