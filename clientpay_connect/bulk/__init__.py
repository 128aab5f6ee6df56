"""Bulk Upload: a CSV/TXT file of invoices becomes reviewed rows, then payment links."""

from pyramid.config import Configurator

from clientpay_connect.body_limits import allow_uploads


def includeme(config: Configurator) -> None:
    """Routes, the job and the views of Bulk Upload (pages under /bulk, API under
    /api/v1/bulk-uploads)."""
    upload = r"/api/v1/bulk-uploads/{id:\d+}"
    config.add_route("api.bulk.template_csv", "/api/v1/bulk-uploads/template.csv")
    config.add_route("api.bulk.template_txt", "/api/v1/bulk-uploads/template.txt")
    config.add_route("api.bulk.uploads", "/api/v1/bulk-uploads")
    config.add_route("api.bulk.upload", upload)
    config.add_route("api.bulk.rows", upload + "/rows")
    config.add_route("api.bulk.row", upload + r"/rows/{row:\d+}")
    config.add_route("api.bulk.send", upload + "/send")
    config.add_route("api.bulk.generate", upload + "/generate")
    config.add_route("api.bulk.report", upload + "/report.csv")
    config.add_route("api.bulk.links_csv", upload + "/links.csv")
    config.add_route("api.bulk.links_xlsx", upload + "/links.xlsx")
    page = r"/bulk/{id:\d+}"
    config.add_route("bulk.upload", "/bulk")
    config.add_route("bulk.review", page)
    config.add_route("bulk.rows", page + "/rows")
    config.add_route("bulk.row.delete", page + r"/rows/{row:\d+}/delete")
    config.add_route("bulk.act", page + "/act")
    # The two routes a file is posted to: their bodies may reach the upload limit.
    allow_uploads(config, "api.bulk.uploads", "bulk.upload")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
