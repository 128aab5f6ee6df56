from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Manage Postings: the API, the page, and the sync jobs that write to the matter system."""
    from clientpay_connect.postings.services import SWEEP_JOB
    from clientpay_connect.sweeps import add_sweep

    config.add_route("api.postings", "/api/v1/postings")
    config.add_route("api.postings.post", "/api/v1/postings/post")
    config.add_route("api.posting", r"/api/v1/postings/{id:\d+}")
    config.add_route("api.posting.remove", r"/api/v1/postings/{id:\d+}/remove")
    config.add_route("api.posting.entered", r"/api/v1/postings/{id:\d+}/entered-by-hand")
    config.add_route("postings.list", "/postings")
    config.add_route("postings.act", "/postings/actions")
    config.add_route("postings.detail", r"/postings/{id:\d+}")
    config.add_route("postings.invoices", r"/postings/{id:\d+}/invoices")
    config.add_route("postings.reallocate", r"/postings/{id:\d+}/reallocate")
    config.add_route("postings.entered", r"/postings/{id:\d+}/entered-by-hand")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
    # Every worker process runs the sweep on a timer of its own (sweeps.py).
    add_sweep(config, SWEEP_JOB, "clientpay.postings.sweep_seconds")
