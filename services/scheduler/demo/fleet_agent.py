"""Plays the node agents of a demo GPU fleet for `make run`: registers every node of a YAML
inventory with maas-scheduler, then heartbeats them until stopped, as real node agents would.

Usage:
  fleet_agent.py TARGET FILE register     register (upsert) the nodes, print a summary, exit
  fleet_agent.py TARGET FILE heartbeat    register, then heartbeat every node until SIGTERM/SIGINT
  fleet_agent.py TARGET - capacity        print the scheduler's GetCapacity as a table

TARGET is the scheduler (host:port); FILE the inventory (see services/scheduler/demo/fleet.yaml).
A malformed inventory is refused before anything is sent, naming the entry and field; a node the
scheduler refuses is reported with the scheduler's status and message. Exit 0 on success, 1 on a
refusal or an unreachable scheduler, 2 on bad usage or a bad file.
"""
import asyncio
import signal
import sys

import grpc
import yaml
from maas.scheduler.v1 import inventory_pb2, scheduler_pb2, scheduler_pb2_grpc

GIB = 1 << 30


class InventoryError(Exception):
    pass


def number(entry: dict, key: str, where: str, default=None, minimum=0) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InventoryError(f"{where}.{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise InventoryError(f"{where}.{key}: must be a non-empty string, got {value!r}")
    return value


def read_inventory(path: str) -> list:
    """The inventory's nodes as RegisterNodeRequest messages."""
    try:
        with open(path, encoding="utf-8") as file:
            document = yaml.safe_load(file)
    except (OSError, yaml.YAMLError) as error:
        raise InventoryError(f"{path}: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("nodes"), list) or not document["nodes"]:
        raise InventoryError(f"{path}: expected a mapping with a non-empty list 'nodes'")
    requests, names = [], set()
    for n, entry in enumerate(document["nodes"]):
        where = f"nodes[{n}]"
        if not isinstance(entry, dict):
            raise InventoryError(f"{where}: must be a mapping")
        name = text(entry, "name", where)
        if name in names:
            raise InventoryError(f"{where}.name: {name!r} appears twice")
        names.add(name)
        labels = entry.get("labels") or {}
        if not isinstance(labels, dict):
            raise InventoryError(f"{where}.labels: must be a mapping")
        groups = entry.get("gpus")
        if not isinstance(groups, list) or not groups:
            raise InventoryError(f"{where}.gpus: must be a non-empty list of GPU groups")
        gpus = []
        for g, group in enumerate(groups):
            gwhere = f"{where}.gpus[{g}]"
            if not isinstance(group, dict):
                raise InventoryError(f"{gwhere}: must be a mapping")
            profiles = []
            for p, profile in enumerate(group.get("mig_profiles") or []):
                pwhere = f"{gwhere}.mig_profiles[{p}]"
                if not isinstance(profile, dict):
                    raise InventoryError(f"{pwhere}: must be a mapping")
                profiles.append(inventory_pb2.MigProfile(
                    name=text(profile, "name", pwhere), memory_bytes=number(profile, "memory_gib", pwhere, minimum=1) * GIB,
                    slices=number(profile, "slices", pwhere, minimum=1),
                    max_instances=number(profile, "max_instances", pwhere, default=1, minimum=1)))
            model = text(group, "model", gwhere)
            memory = number(group, "memory_gib", gwhere, minimum=1) * GIB
            slices = number(group, "mig_slices", gwhere, default=0)
            for _ in range(number(group, "count", gwhere, minimum=1)):
                gpus.append(inventory_pb2.Gpu(
                    uuid=f"{name}-gpu-{len(gpus)}", model=model, memory_bytes=memory, mig_slices=slices,
                    mig_profiles=profiles))
        requests.append(scheduler_pb2.RegisterNodeRequest(node=inventory_pb2.Node(
            name=name, labels={str(k): str(v) for k, v in labels.items()}, gpus=gpus)))
    return requests


async def register(stub, requests: list) -> None:
    for request in requests:
        await stub.RegisterNode(request, timeout=10)
    counts = {}
    for request in requests:
        for gpu in request.node.gpus:
            counts[gpu.model] = counts.get(gpu.model, 0) + 1
    summary = ", ".join(f"{count} x {model}" for model, count in sorted(counts.items()))
    print(f"registered {len(requests)} nodes: {summary}", flush=True)


async def heartbeat(stub, requests: list, stopping: asyncio.Event) -> None:
    """Heartbeats every node at the interval the scheduler asks for (a third of its grace)."""
    interval = 10.0
    while not stopping.is_set():
        for request in requests:
            try:
                answer = await stub.Heartbeat(scheduler_pb2.HeartbeatRequest(node_name=request.node.name), timeout=10)
                if answer.heartbeat_interval.seconds or answer.heartbeat_interval.nanos:
                    interval = max(1.0, answer.heartbeat_interval.seconds + answer.heartbeat_interval.nanos / 1e9)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    await stub.RegisterNode(request, timeout=10)  # deleted meanwhile: register again
                else:
                    print(f"heartbeat of {request.node.name}: {error.code().name}: {error.details()}", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(stopping.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass


async def capacity(stub) -> None:
    answer = await stub.GetCapacity(scheduler_pb2.GetCapacityRequest(), timeout=10)
    print(f"{'GPU':<12} {'NODES':>5} {'TOTAL':>5} {'ALLOCATED':>9} {'FREE':>4} {'LARGEST FREE BLOCK':>18} {'UNSCHEDULABLE':>13}")
    for line in answer.capacity:
        print(f"{line.gpu_model:<12} {line.nodes:>5} {line.total_gpus:>5} {line.allocated_gpus:>9} {line.free_gpus:>4} "
              f"{line.largest_free_block:>18} {line.unschedulable_gpus:>13}")


async def run(target: str, path: str, command: str) -> int:
    requests = read_inventory(path) if command != "capacity" else []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        if command == "capacity":
            await capacity(stub)
            return 0
        await register(stub, requests)
        if command == "heartbeat":
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopping.set)
            await heartbeat(stub, requests, stopping)
    return 0


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[3] not in ("register", "heartbeat", "capacity"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, path, command = sys.argv[1:]
    try:
        return asyncio.run(run(target, path, command))
    except InventoryError as error:
        print(f"fleet_agent: {error}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as error:
        print(f"fleet_agent: the scheduler at {target} answered {error.code().name}: {error.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
