from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Sent Pages: the list of a firm's links (API, Excel export, page) and cancel selected.

    GET /api/v1/links shares its route with POST (Quick Link), which links/ declares.
    """
    # links/ declares /api/v1/links/{id} for digits only, so "export.xlsx" is never an id.
    config.add_route("api.links.export", "/api/v1/links/export.xlsx")
    config.add_route("sent.list", "/sent")
    config.add_route("sent.cancel", "/sent/cancel")
    config.add_route("sent.counts", "/sent/counts")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
