"""The HTTP side of the metrics: a Twisted Site with `/metrics` (prometheus_client's
Twisted resource, which renders on the reactor's thread pool)."""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Site

from fastagi.metrics import Metrics


def metrics_site(metrics: Metrics) -> Site:
    from prometheus_client.twisted import MetricsResource

    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    return Site(root)
