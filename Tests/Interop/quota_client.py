"""A small command-line client of maas.quota.v1.Quota, built on stock grpcio and the files in
proto/: how `make run` seeds its demo tenant, and a way to poke the service by hand.

Usage: quota_client.py TARGET COMMAND ...
  set-limits TENANT [--key KEY] [RESOURCE=VALUE|RESOURCE=unlimited ...]
  get-quota TENANT
  consume TENANT [AMOUNT] [--key KEY]          (API calls)
  report TENANT                                 (this UTC month so far)
RESOURCE is models, storage_bytes, gpu_seconds, api_calls_per_day or concurrent_gpus.
Prints the answer as text; a failed call prints its status and exits 1.
"""
import datetime
import sys
import uuid

import grpc
from google.protobuf import text_format
from google.protobuf.timestamp_pb2 import Timestamp
from maas.quota.v1 import quota_pb2, quota_pb2_grpc, resources_pb2


def option(args: list, name: str, default: str) -> str:
    if name in args:
        index = args.index(name)
        value = args[index + 1]
        del args[index:index + 2]
        return value
    return default


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, command, tenant, *args = sys.argv[1:]
    key = option(args, "--key", str(uuid.uuid4()))
    stub = quota_pb2_grpc.QuotaStub(grpc.insecure_channel(target))
    try:
        if command == "set-limits":
            limits = []
            for pair in args:
                name, value = pair.split("=", 1)
                resource = resources_pb2.Resource.Value("RESOURCE_" + name.upper())
                if value == "unlimited":
                    limits.append(resources_pb2.Limit(resource=resource, unlimited=True))
                else:
                    limits.append(resources_pb2.Limit(resource=resource, value=int(value)))
            reply = stub.SetLimits(quota_pb2.SetLimitsRequest(tenant_id=tenant, limits=limits, idempotency_key=key), timeout=10)
        elif command == "get-quota":
            reply = stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id=tenant), timeout=10)
        elif command == "consume":
            amount = int(args[0]) if args else 1
            reply = stub.Consume(quota_pb2.ConsumeRequest(
                tenant_id=tenant, resource=resources_pb2.RESOURCE_API_CALLS_PER_DAY, amount=amount,
                idempotency_key=key), timeout=10)
        elif command == "report":
            now = datetime.datetime.now(datetime.timezone.utc)
            start, end = Timestamp(), Timestamp()
            start.FromDatetime(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
            end.FromDatetime(now + datetime.timedelta(seconds=1))
            reply = stub.GetUsageReport(quota_pb2.GetUsageReportRequest(
                tenant_id=tenant, period_start=start, period_end=end), timeout=10)
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}")
        return 1
    print(text_format.MessageToString(reply), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
