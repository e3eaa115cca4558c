"""Fires many concurrent Schedule and Release calls at one maas-scheduler server, as a stock
grpcio client would, and prints what every workload got as JSON on stdout.

Usage: scheduler_load.py TARGET COUNT CONCURRENCY PREFIX TENANTS KEEP_EVERY
  Workload i is PREFIX-i of tenant TENANTS.split(",")[i % n], with the request mix(i) below.
  A workload that was placed is released again, except where i is a multiple of KEEP_EVERY
  (1 keeps all): those stay ACTIVE for the caller to find afterwards.

Each workload's record: {"tenant", "sharing" (EXCLUSIVE, SHARED or MIG), "outcome" ("placed" or the status code's name), "id",
"gpus" (GPUs the allocation holds, as quota counts them), "placements" ([node, uuids, memory,
mig_profile, mig_start] per replica, as Schedule answered), "released" (bool), "released_placements" (as
Release answered)}.

A call answered UNAVAILABLE or ABORTED (conflicts with the other replica outlasted the server's
attempts) is retried with the same workload id or idempotency key, as a client should: both make
the retry safe. Exits 0 when every call got an answer (refusals are answers), 1 otherwise.
"""
import asyncio
import json
import sys

import grpc
from maas.scheduler.v1 import placement_pb2, scheduler_pb2, scheduler_pb2_grpc
from retrying import retrying

GIB = 1 << 30
ANSWERS = ("placed", "RESOURCE_EXHAUSTED")
# ABORTED too: conflicts with the other replica outlasted the server's own attempts.
RETRY = dict(codes=(grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED), attempts=10, first_delay=0.02)


def mix(index: int):
    """The request of workload `index`: (replicas, count, gpu_type, memory, sharing, profile,
    policy), cycling through every sharing mode and policy."""
    kind = index % 6
    if kind == 0:
        return 1, 2, "H100-80GB", 0, placement_pb2.SHARING_MODE_EXCLUSIVE, "", placement_pb2.PLACEMENT_POLICY_BINPACK
    if kind == 1:
        return 2, 1, "H100-80GB", 0, placement_pb2.SHARING_MODE_EXCLUSIVE, "", placement_pb2.PLACEMENT_POLICY_SPREAD
    if kind == 2:
        return 1, 1, "L4-24GB", (4 + index % 9) * GIB, placement_pb2.SHARING_MODE_SHARED, "", placement_pb2.PLACEMENT_POLICY_BINPACK
    if kind == 3:
        profile = "3g.40gb" if index % 4 == 3 else "1g.10gb"
        return 1, 1, "A100-80GB", 0, placement_pb2.SHARING_MODE_MIG, profile, placement_pb2.PLACEMENT_POLICY_LEAST_LOADED
    if kind == 4:
        return 1, 1, "H100-80GB", 0, placement_pb2.SHARING_MODE_EXCLUSIVE, "", placement_pb2.PLACEMENT_POLICY_LEAST_LOADED
    return 2, 1, "L4-24GB", 6 * GIB, placement_pb2.SHARING_MODE_SHARED, "", placement_pb2.PLACEMENT_POLICY_SPREAD


def request(tenant: str, workload: str, index: int) -> scheduler_pb2.ScheduleRequest:
    replicas, count, gpu_type, memory, sharing, profile, policy = mix(index)
    return scheduler_pb2.ScheduleRequest(
        tenant_id=tenant, workload_id=workload, replicas=replicas, policy=policy,
        gpu=placement_pb2.GpuRequest(
            count=count, gpu_type=gpu_type, min_memory_bytes=memory, sharing=sharing, mig_profile=profile))


def gpus_held(index: int) -> int:
    """What quota counts for the request: count x replicas when exclusive, a device per replica
    otherwise."""
    replicas, count, _, _, sharing, _, _ = mix(index)
    return replicas * (count if sharing == placement_pb2.SHARING_MODE_EXCLUSIVE else 1)


def placements(allocation) -> list:
    return [[p.node, list(p.gpu_uuids), p.memory_bytes, p.mig_profile, p.mig_start] for p in allocation.placements]


async def run(target: str, count: int, concurrency: int, prefix: str, tenants: list, keep_every: int) -> dict:
    records = {}
    gate = asyncio.Semaphore(concurrency)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)

        async def workload(index: int) -> None:
            tenant = tenants[index % len(tenants)]
            name = f"{prefix}-{index}"
            sharing = placement_pb2.SharingMode.Name(mix(index)[4]).removeprefix("SHARING_MODE_")
            record = {"tenant": tenant, "sharing": sharing, "gpus": gpus_held(index), "released": False}
            records[name] = record
            try:
                allocation = await retrying(lambda: stub.Schedule(request(tenant, name, index), timeout=60), **RETRY)
            except grpc.aio.AioRpcError as error:
                record["outcome"] = error.code().name
                record["message"] = error.details()
                return
            record.update(outcome="placed", id=allocation.id, placements=placements(allocation))
            if index % keep_every == 0:
                return
            try:
                released = await retrying(lambda: stub.Release(scheduler_pb2.ReleaseRequest(
                    tenant_id=tenant, allocation_id=allocation.id, idempotency_key=f"release-{name}"), timeout=60), **RETRY)
            except grpc.aio.AioRpcError as error:
                record["outcome"] = f"release {error.code().name}"
                record["message"] = error.details()
                return
            record.update(released=True, released_placements=placements(released))

        async def bounded(index: int) -> None:
            async with gate:
                await workload(index)

        await asyncio.gather(*(bounded(index) for index in range(count)))
    return records


def main() -> int:
    if len(sys.argv) != 7:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, count, concurrency, prefix, tenants, keep_every = sys.argv[1:]
    records = asyncio.run(run(target, int(count), int(concurrency), prefix, tenants.split(","), int(keep_every)))
    print(json.dumps(records))
    return 0 if all(r["outcome"] in ANSWERS for r in records.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
