"""`--serve-metrics HOST:PORT`: holoload's own live stats in Prometheus text format while it runs.

A sink like the others: it turns events into metrics in a private registry, served from a
thread by prometheus_client's HTTP server (GET /metrics). Series:

    holoload_run_info{run_id, scenario, target}                      1
    holoload_ops_total{phase, workload, op, endpoint}                successful operations
    holoload_errors_total{phase, workload, op, endpoint, class}      failed attempts by error class
    holoload_dropped_total{phase, workload, op, endpoint}            open-loop arrivals dropped
    holoload_latency_seconds{phase, workload, op, endpoint, quantile} last window's p50/p95/p99/max
    holoload_gate_state{gate}                                         1 pass, 0 fail, -1 pending
    holoload_chaos_steps_total{name, action, step, ok}               chaos fire/heal steps
    holoload_window_index                                             the last closed window
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from holoload.core.errors import InputError
from holoload.core.events import ChaosFinished, Event, GateChanged, RunProblem, RunStarted, WindowClosed

_OP = ("phase", "workload", "op", "endpoint")
_GATE_STATES = {"pass": 1.0, "fail": 0.0}


def parse_listen(value: str) -> tuple[str, int]:
    """`127.0.0.1:9464` or `:9464` (loopback) -> (host, port).

    Raises:
        InputError: not HOST:PORT with a port in 1..65535 (exit 2).
    """
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InputError(f"--serve-metrics {value!r}: expected HOST:PORT such as 127.0.0.1:9464")
    return host, int(port_text)


class MetricsExporter:
    """Serves holoload's live stats; `emit` takes the run's events, `close` stops the server.

    Args:
        host / port: where to listen (port 0 picks a free one: see `port`).
    """

    def __init__(self, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._info = Gauge("holoload_run_info", "the run being measured", ("run_id", "scenario", "target"), registry=r)
        self._ops = Counter("holoload_ops", "successful operations", _OP, registry=r)
        self._errors = Counter("holoload_errors", "failed attempts by error class", (*_OP, "class"), registry=r)
        self._dropped = Counter("holoload_dropped", "open-loop arrivals dropped", _OP, registry=r)
        self._latency = Gauge(
            "holoload_latency_seconds", "last window's latency percentiles", (*_OP, "quantile"), registry=r
        )
        self._gates = Gauge("holoload_gate_state", "1 pass, 0 fail, -1 pending", ("gate",), registry=r)
        self._chaos = Counter("holoload_chaos_steps", "chaos steps", ("name", "action", "step", "ok"), registry=r)
        self._window = Gauge("holoload_window_index", "the last closed window", registry=r)
        self._problems = Counter(
            "holoload_problems", "problems the run recorded: worker_lost, interrupted...", ("what",), registry=r
        )
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=r)
        except OSError as exc:
            raise InputError(f"--serve-metrics {host}:{port}: cannot listen there: {exc}") from exc
        self._closed = threading.Event()

    @property
    def port(self) -> int:
        server: WSGIServer = self._server
        return int(server.server_address[1])

    def emit(self, event: Event) -> None:
        if isinstance(event, WindowClosed):
            self._window.set(event.index)
            for row in event.rows:
                labels = (event.phase, row.workload, row.op, row.endpoint)
                self._ops.labels(*labels).inc(row.ok)
                self._dropped.labels(*labels).inc(row.dropped)
                for error_class, n in row.errors.items():
                    self._errors.labels(*labels, error_class).inc(n)
                for quantile, value_ms in (("0.5", row.p50_ms), ("0.95", row.p95_ms), ("0.99", row.p99_ms)):
                    if value_ms is not None:
                        self._latency.labels(*labels, quantile).set(value_ms / 1000)
                if row.max_ms is not None:
                    self._latency.labels(*labels, "1").set(row.max_ms / 1000)
        elif isinstance(event, GateChanged):
            self._gates.labels(event.name).set(_GATE_STATES.get(event.state, -1.0))
        elif isinstance(event, ChaosFinished):
            self._chaos.labels(event.name, event.action, event.step, str(event.ok).lower()).inc()
        elif isinstance(event, RunStarted):
            self._info.labels(event.run_id, event.scenario, event.target).set(1)
        elif isinstance(event, RunProblem):
            self._problems.labels(event.what).inc()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
