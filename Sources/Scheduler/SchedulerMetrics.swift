import MaaSRuntime
import Prometheus
import Synchronization

/// The scheduler's own metrics, beside the runtime's (calls, pool, process), read at each scrape:
/// the fleet's GPUs per type as this replica's placement index counts them (what dashboards of
/// utilisation and alerts on a full fleet need), and counts of heartbeat batches and placement
/// conflicts (commits that found another replica had been first: many of them mean replicas
/// contend for the same GPUs).
enum SchedulerMetrics {
  static func register(_ store: SchedulerStore, in metrics: ServerMetrics) {
    let registry = metrics.registry
    let heartbeatBatches = MirroredCounter(
      registry.makeCounter(
        descriptor: .init(
          metricName: "maas_scheduler_heartbeat_batches", unitName: "total",
          helpText: "Heartbeat batches written, each one transaction for the heartbeats that arrived together.")))
    let conflicts = MirroredCounter(
      registry.makeCounter(
        descriptor: .init(
          metricName: "maas_scheduler_placement_conflicts", unitName: "total",
          helpText: "Schedule commits that found a chosen GPU or node changed by another replica, and placed again.")))
    let fleet = FleetGauges(registry: registry)
    metrics.onScrape {
      heartbeatBatches.follow(store.heartbeatBatches.load(ordering: .relaxed))
      conflicts.follow(store.placementConflicts.load(ordering: .relaxed))
      fleet.set(store.capacity(gpuModel: "", selector: [:]))
    }
  }
}

/// Per GPU type: GPUs in all, allocated, on nodes that are not READY, and the largest free block.
/// A type that leaves the fleet reads 0 rather than its last figures.
private final class FleetGauges: Sendable {
  private struct Gauges {
    let total, allocated, unschedulable, largestFreeBlock: Gauge
  }

  private let registry: PrometheusCollectorRegistry
  private let byModel = Mutex<[String: Gauges]>([:])

  init(registry: PrometheusCollectorRegistry) {
    self.registry = registry
  }

  func set(_ capacities: [GPUCapacity]) {
    self.byModel.withLock { byModel in
      let present = Dictionary(capacities.map { ($0.gpuModel, $0) }, uniquingKeysWith: { first, _ in first })
      for model in Set(byModel.keys).union(present.keys) {
        let gauges = byModel[model] ?? self.make(model)
        byModel[model] = gauges
        let capacity = present[model] ?? GPUCapacity(gpuModel: model)
        gauges.total.set(Double(capacity.totalGPUs))
        gauges.allocated.set(Double(capacity.allocatedGPUs))
        gauges.unschedulable.set(Double(capacity.unschedulableGPUs))
        gauges.largestFreeBlock.set(Double(capacity.largestFreeBlock))
      }
    }
  }

  private func make(_ model: String) -> Gauges {
    func gauge(_ name: String, _ help: String) -> Gauge {
      self.registry.makeGauge(
        descriptor: .init(metricName: name, unitName: "gpus", helpText: help), labels: [("gpu_model", model)])
    }
    return Gauges(
      total: gauge("maas_scheduler", "GPUs of the type in the fleet."),
      allocated: gauge("maas_scheduler_allocated", "GPUs of the type with any allocation on them (whole, shared or MIG)."),
      unschedulable: gauge("maas_scheduler_unschedulable", "GPUs of the type on nodes that are not READY (silent, cordoned or draining)."),
      largestFreeBlock: gauge(
        "maas_scheduler_largest_free_block", "The most wholly free GPUs of the type on one READY node: the largest EXCLUSIVE replica that fits now."))
  }
}
