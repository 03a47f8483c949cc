"""Prometheus metrics at /metrics: request counts and latency by route, leases, and farm totals from the database."""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from rayfarm.store import counts


class FarmCollector:
    """Tasks, frames and workers by state, read from the database at scrape time (so every process agrees)."""

    def __init__(self, farm):
        self.farm = farm

    def collect(self):
        task_gauge = GaugeMetricFamily("rayfarm_tasks", "Submitted tasks by status.", labels=["status"])
        frame_gauge = GaugeMetricFamily("rayfarm_chunks", "Chunks by frame status.", labels=["status"])
        worker_gauge = GaugeMetricFamily("rayfarm_workers", "Render nodes by state.", labels=["state"])
        with self.farm.db.read() as conn:
            task_rows, frame_rows, node_rows = counts.by_state(conn)
        for gauge, rows in ((task_gauge, task_rows), (frame_gauge, frame_rows), (worker_gauge, node_rows)):
            for label, count in rows:
                gauge.add_metric([str(label)], count)
        yield task_gauge
        yield frame_gauge
        yield worker_gauge


class Metrics:
    def __init__(self, farm):
        self.registry = CollectorRegistry()
        self.requests = Counter("rayfarm_api_requests", "API requests by route and Renderbus code.",
                                ["route", "code"], registry=self.registry)
        self.latency = Histogram("rayfarm_api_latency_seconds", "API latency by route.", ["route"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.leases = Counter("rayfarm_leases", "Chunks leased to render nodes.", registry=self.registry)
        self.dispatch = Histogram("rayfarm_dispatch_latency_seconds", "Time to choose and lease chunks for a node.",
                                  registry=self.registry,
                                  buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
        self.results = Counter("rayfarm_chunk_results", "Chunk results reported by nodes.", ["result", "accepted"],
                               registry=self.registry)
        self.registry.register(FarmCollector(farm))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
