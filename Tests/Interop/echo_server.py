"""A Python grpcio server for maas.echo.v1.Echo and grpc.health.v1.Health.

The Swift interoperability tests (Tests/InteropTests) start it and call it through the shim
transport. It behaves exactly as Sources/MaaSTesting/EchoService.swift does, so that one test
drives either server the same way:

- messages as proto/maas/echo/v1/echo.proto says;
- every request entry whose key starts with `x-` comes back in the initial metadata and again in
  the trailers;
- `x-delay-ms: N` waits N milliseconds before answering;
- `x-wait-for-cancel: 1` answers nothing and waits until the RPC is cancelled (at most 60 s),
  then fails with CANCELLED;
- `x-fail-code: N` (1...16) with `x-fail-message: TEXT` fails the RPC with that status after
  reading the requests, the echoed entries in its trailers.

Needs the stubs that scripts/python-env generates into .build-python/ on PYTHONPATH.

    python echo_server.py --port 0

binds a free port on 127.0.0.1 and prints `listening on 127.0.0.1:PORT` as its first line;
SIGTERM or SIGINT stops it (in-flight calls get a short grace period) with exit status 0.
"""

import argparse
import re
import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from maas.echo.v1 import echo_pb2, echo_pb2_grpc

# How long `x-wait-for-cancel` waits for a cancellation that never comes, as the Swift service.
WAIT_FOR_CANCEL_LIMIT_S = 60.0
# Swift's Int(String): an optional sign and decimal digits, nothing else.
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _integer(value):
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def _first(metadata, key):
    for entry_key, value in metadata:
        if entry_key == key and isinstance(value, str):
            return value
    return None


class _Cancelled(Exception):
    """The RPC ended (cancelled, or past its deadline) while its handler waited."""


class EchoServicer(echo_pb2_grpc.EchoServicer):
    def _steer(self, context):
        """Applies the steering metadata and returns the entries to echo."""
        metadata = tuple(context.invocation_metadata())
        echoed = tuple((key, value) for key, value in metadata if key.startswith("x-"))

        # Set by grpcio when the RPC ends for any reason; waits below wake up on it, as the
        # Swift service's sleeps end when the handler's task is cancelled.
        ended = threading.Event()
        context.add_callback(ended.set)

        delay = _integer(_first(metadata, "x-delay-ms"))
        if delay is not None:
            if ended.wait(max(delay, 0) / 1000.0):
                raise _Cancelled()
        if _first(metadata, "x-wait-for-cancel") == "1":
            ended.wait(WAIT_FOR_CANCEL_LIMIT_S)
            context.abort(grpc.StatusCode.CANCELLED, "cancelled")
        code = _status_code(_integer(_first(metadata, "x-fail-code")))
        if code is not None:
            context.set_trailing_metadata(echoed)
            context.abort(code, _first(metadata, "x-fail-message") or "")
        return echoed

    def Get(self, request, context):
        try:
            echoed = self._steer(context)
        except _Cancelled:
            return echo_pb2.EchoResponse()
        context.send_initial_metadata(echoed)
        context.set_trailing_metadata(echoed)
        return echo_pb2.EchoResponse(text=request.text, payload=request.payload)

    def Expand(self, request, context):
        try:
            echoed = self._steer(context)
        except _Cancelled:
            return
        context.send_initial_metadata(echoed)
        words = request.text.split(" ") if request.text else []
        for word in words:
            yield echo_pb2.EchoResponse(text=word, payload=request.payload)
        context.set_trailing_metadata(echoed)

    def Collect(self, request_iterator, context):
        texts = []
        payload = bytearray()
        for message in request_iterator:
            texts.append(message.text)
            payload += message.payload
        try:
            echoed = self._steer(context)
        except _Cancelled:
            return echo_pb2.EchoResponse()
        context.send_initial_metadata(echoed)
        context.set_trailing_metadata(echoed)
        return echo_pb2.EchoResponse(text=" ".join(texts), payload=bytes(payload))

    def Update(self, request_iterator, context):
        try:
            echoed = self._steer(context)
        except _Cancelled:
            return
        # Sent before the first request is read, so that a caller may wait for it.
        context.send_initial_metadata(echoed)
        for message in request_iterator:
            yield echo_pb2.EchoResponse(text=message.text, payload=message.payload)
        context.set_trailing_metadata(echoed)


def _status_code(number):
    """The failing status with that number, or None (OK and unknown numbers fail nothing)."""
    if number is None:
        return None
    for code in grpc.StatusCode:
        if code.value[0] == number and code is not grpc.StatusCode.OK:
            return code
    return None


def serve(host, port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    echo_pb2_grpc.add_EchoServicer_to_server(EchoServicer(), server)
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("maas.echo.v1.Echo", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        print(f"echo_server.py: cannot bind {host}:{port}", file=sys.stderr, flush=True)
        return 1

    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # A child inherits its parent's blocked-signal mask, and a Swift test process (Foundation's
    # Process under swift-testing) starts us with SIGTERM and SIGINT blocked: unblock them, or
    # the test's SIGTERM would never arrive.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    server.start()
    print(f"listening on {host}:{bound}", flush=True)
    # A bounded wait in a loop keeps the main thread able to run the signal handler.
    while not stop.wait(0.5):
        pass
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=2).wait()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
