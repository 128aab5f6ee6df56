from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Reports: the reconciliation of payments received and posted (API, page, workbook)."""
    config.add_route("api.reports.reconciliation", "/api/v1/reports/reconciliation")
    config.add_route("api.reports.reconciliation.xlsx", "/api/v1/reports/reconciliation.xlsx")
    config.add_route(
        "api.reports.reconciliation.postings", "/api/v1/reports/reconciliation/postings"
    )
    config.add_route("reports.reconciliation", "/reports/reconciliation")
    config.scan(".api")
    config.scan(".views")
