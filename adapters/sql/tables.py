"""The mapped tables, read from the database itself (reflection), with our names for columns.

Reflection tells each column's type, so that ids given as strings at the adapter's boundary
are compared as the database stores them (an integer key compared with a string fails on
PostgreSQL), and a mapping that names a missing table or column is caught at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, MetaData, Table, exc
from sqlalchemy.engine import Connection

from adapters.sql.mapping import SchemaMapping
from clientpay_connect.connect.interfaces import Permanent


@dataclass(frozen=True)
class MappedTable:
    table: Table
    # our column name -> the database's column
    columns: dict[str, Column[Any]]

    def __getitem__(self, ours: str) -> Column[Any]:
        return self.columns[ours]

    def has(self, ours: str) -> bool:
        return ours in self.columns

    def labelled(self, *names: str) -> list[ColumnElement[Any]]:
        """The columns among ``names`` that this table has, each labelled with our name."""
        return [self.columns[name].label(name) for name in names if name in self.columns]

    def key(self, ours: str, value: object) -> object | None:
        """``value`` (an id from our side) as the column stores it; None when it cannot be."""
        return key_for(self.columns[ours], value)


@dataclass(frozen=True)
class MappedTables:
    clients: MappedTable
    matters: MappedTable
    invoices: MappedTable
    payments: MappedTable


def reflect(connection: Connection, mapping: SchemaMapping) -> MappedTables:
    metadata = MetaData()
    mapped = {
        key: _reflect_one(connection, metadata, mapping, key)
        for key in ("clients", "matters", "invoices", "payments")
    }
    return MappedTables(**mapped)


def _reflect_one(
    connection: Connection, metadata: MetaData, mapping: SchemaMapping, key: str
) -> MappedTable:
    name = mapping.tables[key]
    try:
        table = Table(name, metadata, schema=mapping.schema, autoload_with=connection)
    except exc.NoSuchTableError as error:
        raise Permanent(f"The matter database has no table {name!r} ({key}).") from error
    columns: dict[str, Column[Any]] = {}
    for ours, theirs in mapping.columns[key].items():
        column = table.c.get(theirs)
        if column is None:
            raise Permanent(f"The table {name!r} has no column {theirs!r} ({key}.{ours}).")
        columns[ours] = column
    return MappedTable(table, columns)


def key_for(column: Column[Any], value: object) -> object | None:
    if python_type(column) is int:
        try:
            return int(str(value))
        except ValueError:
            return None
    return str(value)


def python_type(column: Column[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def as_date(value: object) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
