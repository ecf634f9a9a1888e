"""What the server tells its operators: Prometheus metrics (/metrics) and the request log."""

from hyperpod_local.telemetry.metrics import Metrics
from hyperpod_local.telemetry.request_log import request_observer

__all__ = ["Metrics", "request_observer"]
