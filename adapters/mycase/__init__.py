"""MyCase (MyCase's public REST API, OAuth2): search and write-back of payments per invoice.

Registered under the ``clientpay_connect.adapters`` entry point as ``mycase``.
"""

from adapters.mycase.adapter import MyCaseAdapter

__all__ = ["MyCaseAdapter"]
