"""The ``sql`` matter adapter (entry point ``adapters.sql:SqlAdapter``) and the demo matter
database (``adapters.sql.demo``)."""

from adapters.sql.adapter import SqlAdapter

__all__ = ["SqlAdapter"]
