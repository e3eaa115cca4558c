"""Retrying a gRPC call the way a well-behaved client does: only on the status codes that say
"try again", with exponential backoff. The load scripts' calls carry idempotency keys (or
workload ids), so a retry can never count twice."""
import asyncio

import grpc


async def retrying(call, codes=(grpc.StatusCode.UNAVAILABLE,), attempts=5, first_delay=0.05):
    """Runs `call` (an async function of no arguments), retrying when it fails with one of
    `codes`, at most `attempts` times in all, waiting first_delay x 2^n (capped at 2^5) between."""
    for attempt in range(attempts):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in codes or attempt == attempts - 1:
                raise
            await asyncio.sleep(first_delay * 2 ** min(attempt, 5))
