"""Calls the public gateway as a stock grpcio client would, with an API key, and prints one line
per check: "ok <name>" or "FAIL <name>: <why>". Exits 0 only when every check passed.

Usage: gateway_client.py TARGET API_KEY
"""
import sys

import grpc
from maas.gateway.v1 import gateway_pb2, gateway_pb2_grpc


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, key = sys.argv[1:]
    credential = (("authorization", f"Bearer {key}"),)
    failures = 0

    def check(name: str, passed: bool, why: str = "") -> None:
        nonlocal failures
        print(f"ok {name}" if passed else f"FAIL {name}: {why}")
        failures += 0 if passed else 1

    with grpc.insecure_channel(target) as channel:
        stub = gateway_pb2_grpc.GatewayStub(channel)
        created = stub.CreateModel(
            gateway_pb2.CreateModelRequest(name="from-python", labels={"client": "grpcio"}, idempotency_key="py-1"),
            metadata=credential, timeout=10)
        check("create_model", created.name == "from-python" and created.labels["client"] == "grpcio", str(created))
        listed = stub.ListModels(gateway_pb2.ListModelsRequest(page_size=10), metadata=credential, timeout=10)
        check("list_models", [m.name for m in listed.models] == ["from-python"], str(listed))
        try:
            stub.ListModels(gateway_pb2.ListModelsRequest(page_size=10), timeout=10)
            check("no_credential", False, "answered without a credential")
        except grpc.RpcError as error:
            check("no_credential", error.code() == grpc.StatusCode.UNAUTHENTICATED, f"{error.code()}: {error.details()}")
        try:
            stub.ListModels(gateway_pb2.ListModelsRequest(page_size=0), metadata=credential, timeout=10)
            check("bad_page_size", False, "page_size 0 was accepted")
        except grpc.RpcError as error:
            check("bad_page_size",
                  error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("page_size"),
                  f"{error.code()}: {error.details()}")
        quota = stub.GetQuota(gateway_pb2.GetQuotaRequest(), metadata=credential, timeout=10)
        models = [r for r in quota.resources if r.resource == 1]
        check("get_quota", len(models) == 1 and models[0].used == 1, str(quota))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
