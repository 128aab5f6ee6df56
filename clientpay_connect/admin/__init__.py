from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_route("admin.home", "/admin")
    config.add_route("api.merchant_accounts", "/api/v1/merchant-accounts")
    config.scan(".views")
