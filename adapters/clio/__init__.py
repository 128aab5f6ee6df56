"""Clio Manage: the adapter registered as ``clio`` (entry point ``adapters.clio:ClioAdapter``)."""

from adapters.clio.adapter import ClioAdapter

__all__ = ["ClioAdapter"]
