"""factory_boy factories; bound to the test's session by the ``dbsession`` fixture."""

from __future__ import annotations

import uuid
from typing import Any

import factory
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import Firm, User
from clientpay_connect.accounts.services import hash_password
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.connect.models import Connection

TEST_PASSWORD = "correct horse battery staple"
_HASHED_TEST_PASSWORD = hash_password(TEST_PASSWORD)

ALL_FACTORIES: list[type[factory.alchemy.SQLAlchemyModelFactory]] = []


def bind(session: Session | None) -> None:
    for model_factory in ALL_FACTORIES:
        # factory_boy's options object carries the session; its stubs do not name it.
        options: Any = model_factory._meta
        options.sqlalchemy_session = session


def _register(cls: Any) -> Any:
    ALL_FACTORIES.append(cls)
    return cls


class _Base(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"


@_register
class FirmFactory(_Base):
    class Meta:
        model = Firm

    name = factory.Sequence(lambda n: f"Firm {n} LLP")
    slug = factory.Sequence(lambda n: f"firm-{n}")
    settings = factory.RelatedFactory(
        "tests.factories.FirmSettingsFactory", factory_related_name="firm"
    )


@_register
class FirmSettingsFactory(_Base):
    class Meta:
        model = FirmSettings


@_register
class UserFactory(_Base):
    class Meta:
        model = User

    firm = factory.SubFactory(FirmFactory)
    # Unique across test sessions too: a live server's database outlives one test.
    email = factory.Sequence(lambda n: f"user{n}-{uuid.uuid4().hex[:8]}@example.test")
    name = factory.Sequence(lambda n: f"User {n}")
    role = "staff"
    active = True
    password_hash = _HASHED_TEST_PASSWORD


@_register
class MerchantAccountFactory(_Base):
    class Meta:
        model = MerchantAccount

    firm = factory.SubFactory(FirmFactory)
    name = factory.Sequence(lambda n: f"Operating {n}")
    kind = "operating"
    currency = "USD"


@_register
class ConnectionFactory(_Base):
    """A connected ``memory`` connection (tests.support.matter_adapter): give its settings a
    registered ``ledger``."""

    class Meta:
        model = Connection

    class Params:
        firm = factory.SubFactory(FirmFactory)

    firm_id = factory.LazyAttribute(lambda o: o.firm.id)
    adapter = "memory"
    name = factory.Sequence(lambda n: f"Matters {n}")
    status = "connected"
    settings = factory.LazyFunction(dict)
