"""Requests to views marked ``openapi=True`` are validated against api/openapi.yaml.

We drive openapi-core ourselves rather than through pyramid_openapi3's includeme because the
add-on may be included under a route prefix (the spec's server URL must follow it), the
contract wants 422 in our error shape, and the document is served as JSON.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.unmarshalling.request.unmarshallers import V30RequestParametersUnmarshaller
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid_openapi3.wrappers import PyramidOpenAPIRequest, PyramidOpenAPIResponse

from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.api.json_body import is_json, read_json_body
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
    # Pyramid keeps an include's route prefix without its slashes ("payments"); the server URL
    # must be absolute ("/payments/api/v1") or no request matches it.
    prefix = (route_prefix or "").strip("/")
    spec["servers"] = [{"url": (f"/{prefix}" if prefix else "") + "/api/v1"}]
    return spec


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
    elif validator in BOUND_MESSAGES:
        # jsonschema's own message quotes the whole value, which may be 64 KB long.
        message = BOUND_MESSAGES[validator].format(error.validator_value)
    return [{"field": ".".join(path), "message": message}]


BOUND_MESSAGES = {
    "maxLength": "Use at most {} characters.",
    "maxItems": "Send at most {} items.",
    "minItems": "Send at least {} items.",
}


def _openapi_request(request: Request) -> Any:
    # pyramid_openapi3's wrapper fits openapi-core's Request protocol at run time; its
    # declared body type is wider than the protocol's, hence Any.
    return PyramidOpenAPIRequest(request)


def _unmarshal_request(request: Request, api: OpenAPI) -> Any:
    if request.content_type == "multipart/form-data":
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


def openapi_view_deriver(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    if not info.options.get("openapi"):
        return view

    def validating_view(context: Any, request: Request) -> Any:
        api: OpenAPI = request.registry["clientpay.openapi"]
        result = _unmarshal_request(request, api)
        errors = [e for e in result.errors if not isinstance(e, PathNotFound)]
        if errors:
            raise FieldErrors(field_errors(errors))
        request.openapi_validated = result
        response = view(context, request)
        if request.registry["clientpay.openapi.validate_responses"] and isinstance(
            response, Response
        ):
            api.validate_response(_openapi_request(request), PyramidOpenAPIResponse(response))
        return response

    return validating_view


openapi_view_deriver.options = ("openapi",)  # type: ignore[attr-defined]


def includeme(config: Configurator) -> None:
    spec = load_spec(config.route_prefix or "")
    config.registry["clientpay.openapi.spec"] = spec
    api = OpenAPI.from_dict(spec)
    config.registry["clientpay.openapi"] = api
    config.registry["clientpay.openapi.parameters"] = V30RequestParametersUnmarshaller(api.spec)
    config.registry["clientpay.openapi.validate_responses"] = as_bool(
        config.get_settings()["clientpay.openapi.validate_responses"]
    )
    config.add_view_deriver(openapi_view_deriver)
    document = json.dumps(spec, indent=1).encode("utf-8")
    config.registry["clientpay.openapi.document"] = document
