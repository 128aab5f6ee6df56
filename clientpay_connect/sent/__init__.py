from pyramid.config import Configurator

from clientpay_connect.db import leave_reads_outside_tm


def includeme(config: Configurator) -> None:
    """Sent Pages: the list of a firm's links (API, Excel export, page) and cancel selected.

    GET /api/v1/links shares its route with POST (Quick Link), which links/ declares.
    """
    # links/ declares /api/v1/links/{id} for digits only, so "export.xlsx" is never an id.
    config.add_route("api.links.export", "/api/v1/links/export.xlsx")
    config.add_route("sent.list", "/sent")
    config.add_route("sent.cancel", "/sent/cancel")
    config.add_route("sent.counts", "/sent/counts")
    # House rule 13: GET /api/v1/links only reads, through db.read_session (the token check,
    # then the page's statements, the first carrying the total where the link counts give
    # it; the token's last use is written after the request, in a transaction of its own),
    # and staff's grid asks for it page after page: outside the transaction manager it costs
    # no BEGIN, no ROLLBACK and no session joined to a transaction, which were most of its
    # time beyond the statements themselves.
    leave_reads_outside_tm(config, "api.links")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
