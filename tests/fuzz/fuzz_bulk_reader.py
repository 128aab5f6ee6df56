"""atheris harness for the bulk-upload reader: any bytes are read or refused with a message.

Run it (atheris is in the ``testing`` extra):

    .venv/bin/python tests/fuzz/fuzz_bulk_reader.py -max_total_time=300 [corpus_dir]

Without atheris, ``check_one_input`` is an ordinary function; tests/fuzz/test_fuzz_bulk_reader.py
runs it over a few hundred inputs on every test run.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from datetime import date
from types import FunctionType, ModuleType
from typing import Any

from clientpay_connect import money
from clientpay_connect.bulk import reader, validation
from clientpay_connect.bulk.reader import UnreadableFile, read_invoice_file
from clientpay_connect.bulk.validation import error_report_csv, validate_rows

# Small limits reach the limit checks with small inputs; the fuzzer's inputs are small.
MAX_BYTES = 64 * 1024
MAX_ROWS = 200


def check_one_input(data: bytes) -> None:
    """The property: a ParsedFile whose rows validate and report, or UnreadableFile with a
    message. Any other exception is a bug, and the fuzzer reports it."""
    try:
        parsed = read_invoice_file(data, max_bytes=MAX_BYTES, max_rows=MAX_ROWS)
    except UnreadableFile as exc:
        if not exc.message.strip():
            raise AssertionError("UnreadableFile without a message") from exc
        return
    if not parsed.rows or len(parsed.rows) > MAX_ROWS:
        raise AssertionError(f"{len(parsed.rows)} rows came back from a readable file")
    validated = validate_rows(
        parsed.rows, require_email=True, existing_invoice_numbers={"1"}, today=date(2025, 6, 1)
    )
    error_report_csv(
        parsed.headers,
        validated,
        delimiter=parsed.delimiter,
        header_row_number=parsed.header_row_number,
    )


def functions_of(module: ModuleType) -> Iterator[FunctionType]:
    """The functions and methods written in ``module``'s own file."""
    members: list[Any] = list(vars(module).values())
    for member in list(members):
        if inspect.isclass(member):
            members.extend(vars(member).values())
    for member in members:
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        member = inspect.unwrap(member) if callable(member) else member
        if inspect.isfunction(member) and member.__code__.co_filename == module.__file__:
            yield member


def main() -> None:
    import atheris

    # Coverage feedback from the code under test only: instrument_all() would instrument the
    # whole application (some 19,000 functions) and take minutes to start.
    for module in (reader, validation, money):
        for function in functions_of(module):
            atheris.instrument_func(function)
    atheris.Setup(sys.argv, check_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
