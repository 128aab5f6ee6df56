"""Every class that says it implements an interface does (zope.interface.verify.verifyClass).

The classes are found by importing every module of the project, so a new boundary or a new
twin is checked without anyone adding it here.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest
from zope.interface import implementedBy
from zope.interface.interface import InterfaceClass
from zope.interface.verify import verifyClass

import adapters
import clientpay_connect

PACKAGES = (clientpay_connect, adapters)


def project_modules() -> list[ModuleType]:
    modules = []
    for package in PACKAGES:
        modules.append(package)
        prefix = package.__name__ + "."
        for info in pkgutil.walk_packages(package.__path__, prefix):
            modules.append(importlib.import_module(info.name))
    return modules


MODULES = project_modules()


def defined_here(module: ModuleType) -> list[object]:
    return [
        obj for obj in vars(module).values() if getattr(obj, "__module__", None) == module.__name__
    ]


IMPLEMENTERS = sorted(
    {
        obj
        for module in MODULES
        for obj in defined_here(module)
        if isinstance(obj, type) and list(implementedBy(obj))
    },
    key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
)
INTERFACES = sorted(
    {obj for module in MODULES for obj in defined_here(module) if isinstance(obj, InterfaceClass)},
    key=lambda iface: f"{iface.__module__}.{iface.__name__}",
)


def name(obj: object) -> str:
    return f"{obj.__module__}.{getattr(obj, '__qualname__', getattr(obj, '__name__', ''))}"


def test_the_walk_finds_the_known_implementers():
    names = {name(cls) for cls in IMPLEMENTERS}
    assert "clientpay_connect.throttle.services.LimitsRateLimiter" in names
    assert "clientpay_connect.throttle.services.NullRateLimiter" in names
    assert "clientpay_connect.throttle.interfaces.IRateLimiter" in {name(i) for i in INTERFACES}


@pytest.mark.parametrize("cls", IMPLEMENTERS, ids=name)
def test_the_class_implements_what_it_declares(cls):
    for interface in implementedBy(cls):
        assert verifyClass(interface, cls)


BOUNDARY_IMPLEMENTERS = [
    cls
    for cls in IMPLEMENTERS
    if cls.__module__.startswith("clientpay_connect.")
    and any(interface in INTERFACES for interface in implementedBy(cls))
]


@pytest.mark.parametrize("cls", BOUNDARY_IMPLEMENTERS, ids=name)
def test_a_boundary_implementation_has_a_service_factory(cls):
    """House rule: views reach one of our boundaries through ``request.find_service``; the
    factory that pyramid_services calls is the class's ``create_service(context, request)``.
    (Classes that only implement a library's interface, e.g. a mailer, are exempt.)"""
    assert callable(getattr(cls, "create_service", None)), f"{name(cls)} has no create_service"


@pytest.mark.parametrize("interface", INTERFACES, ids=name)
def test_every_interface_has_an_implementation(interface):
    implementations = [cls for cls in IMPLEMENTERS if interface.implementedBy(cls)]
    assert implementations, f"nothing implements {name(interface)}"
