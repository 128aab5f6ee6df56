from pyramid.config import Configurator

from clientpay_connect.connect.interfaces import IAdapterCatalog
from clientpay_connect.connect.services import AdapterPool


def includeme(config: Configurator) -> None:
    """Connections to matter systems, the adapters' catalog, and Connect (API and page)."""
    settings = config.get_settings()
    catalog_class = config.maybe_dotted(
        settings.get(
            "clientpay.connect.catalog",
            "clientpay_connect.connect.services.EntryPointAdapterCatalog",
        )
    )
    config.registry["clientpay.connect.catalog"] = catalog_class.from_settings(settings)
    config.register_service_factory(catalog_class.create_service, IAdapterCatalog)
    config.registry["clientpay.connect.adapters"] = AdapterPool()
    # The numeric patterns keep /connections/{id} from reading other words as an id.
    config.add_route("api.connections", "/api/v1/connections")
    config.add_route("api.connection", r"/api/v1/connections/{id:\d+}")
    config.add_route("api.connection.authorize", r"/api/v1/connections/{id:\d+}/authorize")
    config.add_route("api.connection.callback", r"/api/v1/connections/{id:\d+}/callback")
    config.add_route("api.connect.search", "/api/v1/connect/search")
    config.add_route("api.connect.links", "/api/v1/connect/links")
    config.add_route("connect.search", "/connect")
    config.add_route("connect.results", "/connect/results")
    config.add_route("connect.preview", "/connect/preview")
    config.add_route("admin.connections", "/admin/connections")
    config.add_route("admin.connection", r"/admin/connections/{id:\d+}")
    config.add_route("admin.connection_reconnect", r"/admin/connections/{id:\d+}/reconnect")
    config.add_route("admin.connection_disconnect", r"/admin/connections/{id:\d+}/disconnect")
    config.scan(".api")
    config.scan(".views")
