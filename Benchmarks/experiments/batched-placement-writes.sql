-- What batching placements would save Postgres: the scheduler's placement writes (lock the GPUs;
-- set them exclusive, insert the allocations and their placements; then lock and release them),
-- for :B placements per transaction, as one set-based statement each, run by pgbench.
-- B=1 is one placement per transaction, as the scheduler writes today (without its quota intent,
-- advisory lock and node-state reads); B=16 is what a group commit of 16 Schedules (and of 16
-- Releases) would send. Not run by any target: see README.md, "Scheduler", for the figures.
--
-- On the cluster `make bench-scheduler` leaves (its 10,000 nodes registered; start it with
-- `scripts/postgres start --dir .run/bench-scheduler`), with up to 16 clients (each takes GPUs
-- of its own 600 nodes, so clients never wait on each other):
--   APP=$(scripts/postgres url --dir .run/bench-scheduler --role app)
--   pgbench -n -M prepared -c 8 -j 2 -T 10 -D B=16 -f Benchmarks/experiments/batched-placement-writes.sql "$APP"
-- A transaction of this script is :B placements.
\set base :client_id * 600 + random(0, 599 - :B)
\set g random(0, 7)
BEGIN;
SELECT set_config('maas.tenant_id', 'sched-bench-t001', true);
SELECT g.uuid FROM scheduler.gpus g WHERE g.uuid = ANY(ARRAY(SELECT 'GPU-bench-node-' || lpad((:base + i)::text, 5, '0') || '-' || :g FROM generate_series(0, :B - 1) i)) ORDER BY g.uuid FOR UPDATE;
WITH ids AS (SELECT i, gen_random_uuid() AS id, 'GPU-bench-node-' || lpad((:base + i)::text, 5, '0') || '-' || :g AS uuid, 'bench-node-' || lpad((:base + i)::text, 5, '0') AS node FROM generate_series(0, :B - 1) i), g AS (UPDATE scheduler.gpus g SET exclusive = true FROM ids WHERE g.uuid = ids.uuid RETURNING g.uuid), a AS (INSERT INTO scheduler.allocations (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time) SELECT id, 'sched-bench-t001', 'pgb-' || id, '{"gpu": {"count": 1, "gpuType": "H100-80GB", "sharing": "exclusive", "migProfile": "", "minMemoryBytes": 0}, "policy": "leastLoaded", "replicas": 1, "nodeSelector": {}}'::jsonb, 0, jsonb_build_array(jsonb_build_object('node', node, 'claims', jsonb_build_array(jsonb_build_object('gpuUUID', uuid, 'migStart', 0, 'exclusive', true, 'migSlices', 0, 'memoryBytes', 85899345920)), 'replica', 0, 'gpuUUIDs', jsonb_build_array(uuid), 'migProfile', '', 'memoryBytes', 85899345920)), 1, 'r-' || id, now() FROM ids), p AS (INSERT INTO scheduler.placements (allocation_id, replica, gpu_uuid, node_name, memory_bytes, mig_slices, exclusive, mig_start) SELECT id, 0, uuid, node, 85899345920, 0, true, 0 FROM ids) SELECT array_agg(ids.id)::text AS ids FROM ids \gset
COMMIT;
BEGIN;
SELECT set_config('maas.tenant_id', 'sched-bench-t001', true);
WITH a AS (SELECT id FROM scheduler.allocations WHERE tenant_id = 'sched-bench-t001' AND id = ANY(:ids::uuid[]) FOR UPDATE), locked AS (SELECT g.uuid FROM scheduler.gpus g WHERE g.uuid IN (SELECT p.gpu_uuid FROM scheduler.placements p WHERE p.allocation_id = ANY(:ids::uuid[])) ORDER BY g.uuid FOR UPDATE) SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM locked);
WITH g AS (UPDATE scheduler.gpus SET exclusive = false WHERE uuid IN (SELECT gpu_uuid FROM scheduler.placements WHERE allocation_id = ANY(:ids::uuid[]))), p AS (DELETE FROM scheduler.placements WHERE allocation_id = ANY(:ids::uuid[])), a AS (UPDATE scheduler.allocations SET state = 2, release_time = now() WHERE id = ANY(:ids::uuid[])) SELECT 1;
COMMIT;
