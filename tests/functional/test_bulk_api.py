from typing import Any
import pytest
from tests.factories import MerchantAccountFactory


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


def test_explore(testapp, staff_auth, account):
    data = b"Invoice Number,Recipient Name,Amount,Email\nINV-1,Ann,100,ann@example.com\nINV-2,,abc,bad\n"
    r = testapp.post("/api/v1/bulk-uploads", {"merchant_account_id": str(account.id)}, upload_files=[("file", "inv.csv", data)], headers=staff_auth, expect_errors=True)
    print(r.status, r.json)
    r = testapp.post("/api/v1/bulk-uploads", {"merchant_account_id": str(account.id)}, upload_files=[("file", "inv.csv", b"\x00\x01\x02PK\x03\x04binary\xff\xfe")], headers=staff_auth, expect_errors=True)
    print(r.status, r.json)
    r = testapp.get("/api/v1/bulk-uploads/template.csv", headers=staff_auth, expect_errors=True)
    print(r.status, r.headers, r.body[:50])
