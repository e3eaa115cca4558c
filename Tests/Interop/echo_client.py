"""A Python grpcio client that checks a maas.echo.v1.Echo server and its health service.

The Swift interoperability tests (Tests/InteropTests) run it against a Swift server on the shim
transport. It relies on the metadata-steered behaviour that Sources/MaaSTesting/EchoService.swift
and echo_server.py share, so it passes against either:

    python echo_client.py --target 127.0.0.1:PORT

prints one line per check and ends with `N passed, N failed`; the exit status is 1 when a check
failed. Needs the stubs that scripts/python-env generates into .build-python/ on PYTHONPATH.
"""

import argparse
import queue
import sys
import traceback

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas.echo.v1 import echo_pb2, echo_pb2_grpc

# Every call has a deadline, so that a server that never answers fails a check, not the run.
CALL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0

TEXT = "héllo, wörld ✓"
PAYLOAD = bytes(range(256))
STEERING = (("x-test", "v"), ("x-data-bin", b"\x00\x01\xfe\xff"))


class CheckFailed(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise CheckFailed(what)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def expect_echoed(metadata, where):
    """Both steering entries came back, with their values unchanged."""
    entries = tuple(metadata or ())
    for key, value in STEERING:
        values = [v for k, v in entries if k == key]
        expect(values == [value], f"{where}: expected {key}={value!r} once, got {entries!r}")


def expect_status(error, code, details, what):
    expect(isinstance(error, grpc.RpcError), f"{what}: expected an RpcError, got {error!r}")
    expect_equal(error.code(), code, f"{what}: status code")
    if details is not None:
        expect_equal(error.details(), details, f"{what}: status message")


def request(text="", payload=b""):
    return echo_pb2.EchoRequest(text=text, payload=payload)


class Checks:
    def __init__(self, channel):
        self.channel = channel
        self.echo = echo_pb2_grpc.EchoStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)

    def unary_get_echoes_text_and_payload(self):
        response = self.echo.Get(request(TEXT, PAYLOAD), timeout=CALL_TIMEOUT_S)
        expect_equal(response.text, TEXT, "text")
        expect_equal(response.payload, PAYLOAD, "payload")

    def unary_get_echoes_metadata_in_headers_and_trailers(self):
        response, call = self.echo.Get.with_call(
            request("metadata"), metadata=STEERING, timeout=CALL_TIMEOUT_S
        )
        expect_equal(response.text, "metadata", "text")
        expect_echoed(call.initial_metadata(), "initial metadata")
        expect_echoed(call.trailing_metadata(), "trailers")
        expect_equal(call.code(), grpc.StatusCode.OK, "status")

    def server_streaming_expand_replies_once_per_word(self):
        call = self.echo.Expand(
            request("alpha beta  gamma", b"\x07"), metadata=STEERING, timeout=CALL_TIMEOUT_S
        )
        expect_echoed(call.initial_metadata(), "initial metadata")
        replies = [(r.text, r.payload) for r in call]
        expect_equal(
            replies,
            [("alpha", b"\x07"), ("beta", b"\x07"), ("", b"\x07"), ("gamma", b"\x07")],
            "replies",
        )
        expect_echoed(call.trailing_metadata(), "trailers")
        expect_equal(call.code(), grpc.StatusCode.OK, "status")

    def server_streaming_expand_of_empty_text_replies_nothing(self):
        replies = list(self.echo.Expand(request("", b"x"), timeout=CALL_TIMEOUT_S))
        expect_equal(replies, [], "replies")

    def client_streaming_collect_joins_texts_and_payloads(self):
        messages = [request("one", b"\x01"), request("two", b""), request("three", b"\x02\x03")]
        response, call = self.echo.Collect.with_call(
            iter(messages), metadata=STEERING, timeout=CALL_TIMEOUT_S
        )
        expect_equal(response.text, "one two three", "text")
        expect_equal(response.payload, b"\x01\x02\x03", "payload")
        expect_echoed(call.initial_metadata(), "initial metadata")
        expect_echoed(call.trailing_metadata(), "trailers")

    def client_streaming_collect_of_no_requests_replies_empty(self):
        response = self.echo.Collect(iter(()), timeout=CALL_TIMEOUT_S)
        expect_equal((response.text, response.payload), ("", b""), "reply")

    def bidi_update_answers_each_request_before_the_next(self):
        outbox = queue.Queue()
        done = object()

        def requests():
            while True:
                item = outbox.get(timeout=CALL_TIMEOUT_S)
                if item is done:
                    return
                yield item

        call = self.echo.Update(requests(), metadata=STEERING, timeout=CALL_TIMEOUT_S)
        try:
            # The reply to each request arrives while the request stream is still open.
            for index in range(5):
                sent = request(f"message {index}", bytes([index]) * index)
                outbox.put(sent)
                reply = next(call)
                expect_equal((reply.text, reply.payload), (sent.text, sent.payload), f"reply {index}")
            outbox.put(done)
            expect_equal(list(call), [], "replies after the requests ended")
        finally:
            outbox.put(done)
            call.cancel()
        expect_echoed(call.initial_metadata(), "initial metadata")
        expect_echoed(call.trailing_metadata(), "trailers")
        expect_equal(call.code(), grpc.StatusCode.OK, "status")

    def an_error_status_crosses_with_its_message_and_trailers(self):
        metadata = STEERING + (("x-fail-code", "5"), ("x-fail-message", "no such echo: 42"))
        try:
            self.echo.Get(request("fail"), metadata=metadata, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            expect_status(error, grpc.StatusCode.NOT_FOUND, "no such echo: 42", "Get")
            expect_echoed(error.trailing_metadata(), "trailers")
        else:
            raise CheckFailed("Get succeeded; expected NOT_FOUND")

    def an_error_status_crosses_on_a_stream(self):
        metadata = (("x-fail-code", "9"), ("x-fail-message", "not now"))
        call = self.echo.Expand(request("a b"), metadata=metadata, timeout=CALL_TIMEOUT_S)
        try:
            replies = list(call)
        except grpc.RpcError as error:
            expect_status(error, grpc.StatusCode.FAILED_PRECONDITION, "not now", "Expand")
        else:
            raise CheckFailed(f"Expand succeeded with {len(replies)} replies; expected FAILED_PRECONDITION")

    def an_expired_deadline_gives_deadline_exceeded(self):
        try:
            self.echo.Get(request("slow"), metadata=(("x-delay-ms", "2000"),), timeout=0.2)
        except grpc.RpcError as error:
            expect_status(error, grpc.StatusCode.DEADLINE_EXCEEDED, None, "Get")
        else:
            raise CheckFailed("Get succeeded; expected DEADLINE_EXCEEDED")

    def an_unknown_method_gives_unimplemented(self):
        # No serializers: the request and response are raw bytes, as for any method the client
        # has no stub for.
        nope = self.channel.unary_unary("/maas.echo.v1.Echo/Nope")
        try:
            nope(b"", timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            expect_status(error, grpc.StatusCode.UNIMPLEMENTED, None, "Nope")
        else:
            raise CheckFailed("Nope succeeded; expected UNIMPLEMENTED")

    def health_check_of_the_server_is_serving(self):
        response = self.health.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT_S
        )
        expect_equal(
            health_pb2.HealthCheckResponse.ServingStatus.Name(response.status),
            "SERVING",
            "status",
        )

    def run(self):
        names = [
            name
            for name in vars(Checks)
            if not name.startswith("_") and name != "run" and callable(getattr(self, name))
        ]
        passed = failed = 0
        for name in names:
            label = name.replace("_", " ")
            try:
                getattr(self, name)()
            except CheckFailed as failure:
                failed += 1
                print(f"FAIL {label}: {failure}", flush=True)
            except Exception as error:  # an unexpected RpcError or a bug: report, go on
                failed += 1
                print(f"FAIL {label}: {error!r}", flush=True)
                traceback.print_exc(file=sys.stderr)
            else:
                passed += 1
                print(f"ok   {label}", flush=True)
        print(f"{passed} passed, {failed} failed", flush=True)
        return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the server")
    args = parser.parse_args(argv)
    with grpc.insecure_channel(args.target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            print(f"FAIL connect: no connection to {args.target} within {CONNECT_TIMEOUT_S} s")
            print("0 passed, 1 failed", flush=True)
            return 1
        return Checks(channel).run()


if __name__ == "__main__":
    sys.exit(main())
