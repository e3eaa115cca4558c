"""Fires many concurrent quota calls for one tenant at one maas-quota server, as a stock
grpcio client would, and prints every call's answer as JSON on stdout.

Usage: quota_load.py TARGET TENANT MODE COUNT CONCURRENCY KEY_PREFIX
  consume: Consume RESOURCE_API_CALLS_PER_DAY, amount 1 + (i % 3), key KEY_PREFIX-i;
           the answer is "ok USED" or the status code's name.
  reserve: Reserve 1 RESOURCE_MODELS, key KEY_PREFIX-i, then Commit it;
           the answer is "committed", or the status code's name where a call failed.
A call answered UNAVAILABLE is retried with the same key (as clients should: the key makes the
retry safe), up to 5 times. Exits 0 when every call got an answer (refusals are answers), 1
otherwise.
"""
import asyncio
import json
import sys

import grpc
from maas.quota.v1 import quota_pb2, quota_pb2_grpc, resources_pb2
from retrying import retrying


async def run(target: str, tenant: str, mode: str, count: int, concurrency: int, prefix: str) -> dict:
    answers = {}
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = quota_pb2_grpc.QuotaStub(channel)

        async def consume(index: int) -> None:
            key = f"{prefix}-{index}"
            request = quota_pb2.ConsumeRequest(
                tenant_id=tenant, resource=resources_pb2.RESOURCE_API_CALLS_PER_DAY,
                amount=1 + index % 3, idempotency_key=key)
            try:
                reply = await retrying(lambda: stub.Consume(request, timeout=60))
                answers[key] = f"ok {reply.used}"
            except grpc.aio.AioRpcError as error:
                answers[key] = error.code().name

        async def reserve(index: int) -> None:
            key = f"{prefix}-{index}"
            try:
                held = await retrying(lambda: stub.Reserve(quota_pb2.ReserveRequest(
                    tenant_id=tenant, resource=resources_pb2.RESOURCE_MODELS, amount=1,
                    idempotency_key=key), timeout=60))
                await retrying(lambda: stub.Commit(quota_pb2.CommitRequest(
                    tenant_id=tenant, reservation_id=held.id, idempotency_key=f"commit-{key}"), timeout=60))
                answers[key] = "committed"
            except grpc.aio.AioRpcError as error:
                answers[key] = error.code().name

        call = consume if mode == "consume" else reserve

        async def bounded(index: int) -> None:
            async with gate:
                await call(index)

        await asyncio.gather(*(bounded(index) for index in range(count)))
    return answers


def main() -> int:
    if len(sys.argv) != 7 or sys.argv[3] not in ("consume", "reserve"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, tenant, mode, count, concurrency, prefix = sys.argv[1:]
    answers = asyncio.run(run(target, tenant, mode, int(count), int(concurrency), prefix))
    print(json.dumps(answers))
    failed = [a for a in answers.values() if not (a.startswith("ok") or a in ("committed", "RESOURCE_EXHAUSTED"))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
