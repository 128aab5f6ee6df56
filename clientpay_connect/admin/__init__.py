from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    # Page route names all start with "admin." (the layout marks the Admin menu item by it).
    page_routes = (
        ("admin.home", "/admin"),
        ("admin.users", "/admin/users"),
        ("admin.user", r"/admin/users/{id:\d+}"),
        ("admin.user_password", r"/admin/users/{id:\d+}/password"),
        ("admin.user_reset_password", r"/admin/users/{id:\d+}/reset-password"),
        ("admin.user_deactivate", r"/admin/users/{id:\d+}/deactivate"),
        ("admin.user_reactivate", r"/admin/users/{id:\d+}/reactivate"),
        ("admin.settings", "/admin/settings"),
        ("admin.notifications", "/admin/notifications"),
        ("admin.notification", r"/admin/notifications/{id:\d+}"),
        ("admin.notification_remove", r"/admin/notifications/{id:\d+}/remove"),
        ("admin.merchant_accounts", "/admin/merchant-accounts"),
        ("admin.merchant_account", r"/admin/merchant-accounts/{id:\d+}"),
        ("admin.merchant_account_deactivate", r"/admin/merchant-accounts/{id:\d+}/deactivate"),
        ("admin.merchant_account_reactivate", r"/admin/merchant-accounts/{id:\d+}/reactivate"),
        ("admin.tokens", "/admin/tokens"),
        ("admin.token_created", r"/admin/tokens/{id:\d+}/created"),
        ("admin.token_revoke", r"/admin/tokens/{id:\d+}/revoke"),
    )
    api_routes = (
        ("api.merchant_accounts", "/api/v1/merchant-accounts"),
        ("api.merchant_account", r"/api/v1/merchant-accounts/{id:\d+}"),
        ("api.settings", "/api/v1/settings"),
        ("api.users", "/api/v1/users"),
        ("api.user", r"/api/v1/users/{id:\d+}"),
    )
    for name, pattern in page_routes + api_routes:
        config.add_route(name, pattern)
    config.scan(".views")
