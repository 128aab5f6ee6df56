"""The fuzz harness's property over a few hundred inputs, without atheris, on every test run.

The inputs are random bytes and damaged copies of real files (bytes flipped, inserted,
dropped, cut short): those get past the encoding and header checks into the rows.
"""

from __future__ import annotations

import codecs
import random

import pytest

from clientpay_connect.bulk.templates_csv import TEMPLATE_CSV, TEMPLATE_TXT
from tests.fuzz.fuzz_bulk_reader import MAX_ROWS, check_one_input, functions_of

SEEDS = [
    TEMPLATE_CSV,
    TEMPLATE_TXT,
    codecs.BOM_UTF16_LE
    + "Name\tAmount\tDue Date\r\nZoë\t$1,234.50\t13/02/2025\r\n".encode("utf-16-le"),
    "Name;Amount;Date;Email\r\nCafé;1 234,50;02.03.2025;a@b.com; c@d.org\r\n".encode("cp1252"),
    b'Inv #,Client,Total,Notes,Matter\n1,"Doe, J","$1,000","a\nb",M\n1,X,0,,\n',
]


def damaged(data: bytes, rnd: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        position = rnd.randrange(len(buffer) + 1)
        action = rnd.choice(["flip", "insert", "delete", "cut", "repeat"])
        if action == "flip" and position < len(buffer):
            buffer[position] = rnd.randrange(256)
        elif action == "insert":
            buffer[position:position] = rnd.choice([b'"', b",", b";", b"\t", b"\r", b"\n", b"\x00"])
        elif action == "delete":
            del buffer[position : position + rnd.randint(1, 4)]
        elif action == "cut":
            del buffer[position:]
        elif action == "repeat":
            buffer[position:position] = bytes(buffer[position : position + 40]) * rnd.randint(2, 9)
    return bytes(buffer)


def inputs(count: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    made = [rnd.randbytes(rnd.randint(0, 300)) for _ in range(count // 4)]
    made += [damaged(rnd.choice(SEEDS), rnd) for _ in range(count - len(made))]
    return made


@pytest.mark.parametrize("chunk", range(4))
def test_harness_property_over_random_and_damaged_files(chunk):
    for data in inputs(100, seed=chunk):
        check_one_input(data)


def test_harness_reaches_the_rows_and_the_row_limit():
    check_one_input(TEMPLATE_CSV)
    check_one_input(b"Name,Amount\n" + b"A,1\n" * (MAX_ROWS + 1))


def test_harness_finds_what_it_should_instrument():
    from clientpay_connect.bulk import reader

    names = {function.__name__ for function in functions_of(reader)}
    # Module functions, methods, class methods, properties, and what a decorator wraps.
    assert {
        "read_invoice_file",
        "get",
        "from_fields",
        "encoding_label",
        "garbage_collection_paused",
    } <= names
    assert "contextmanager" not in names  # imported, not written there
