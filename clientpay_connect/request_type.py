"""The request's extensions (``add_request_method``) on one class, made once per app.

Pyramid gives every request the methods and reified properties that ``add_request_method``
registered (pyramid_tm's ``tm``, pyramid_services' ``find_service``, our ``dbsession``,
``user`` and the rest) by making a new subclass of the request's class for that one request
(``apply_request_extensions``). On the payment page that class cost about a sixth of the
request's CPU: making the type, then every attribute looked up on a type whose method
cache is cold, then the cyclic garbage collector freeing it.

So once every ``add_request_method`` of the configuration has run, they are moved onto one
subclass of the request factory's class, made here and registered as the request factory:
each request is an instance of it, with the same methods and properties, and Pyramid's own
step finds nothing left to apply. Whatever asks for a request the way Pyramid's scripts do
(``pyramid.scripting.prepare``, ``registry.queryUtility(IRequestFactory)``) gets this class
too. A request method added after the configuration was committed stays with Pyramid's
per-request step, as before.
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.registry import Registry
from pyramid.request import Request

# After every action of the default order: add_request_method and set_request_factory are.
AFTER_EVERY_EXTENSION = 100


def bake_extensions(registry: Registry) -> type | None:
    """Move the registered extensions onto a subclass of the request factory's class and make
    it the request factory; the class (None when there is nothing to move, or the factory is
    not a class to subclass)."""
    extensions = registry.queryUtility(IRequestExtensions)
    factory = registry.queryUtility(IRequestFactory, default=Request)
    if extensions is None or not isinstance(factory, type):
        return None
    attributes: dict[str, Any] = {**extensions.methods, **extensions.descriptors}
    if not attributes:
        return None
    baked = type(factory.__name__, (factory,), {**attributes, "__module__": factory.__module__})
    registry.registerUtility(baked, IRequestFactory)
    extensions.methods.clear()
    extensions.descriptors.clear()
    return baked


def includeme(config: Configurator) -> None:
    config.action(
        ("clientpay.request_type",),
        lambda: bake_extensions(config.registry),
        order=AFTER_EVERY_EXTENSION,
    )
