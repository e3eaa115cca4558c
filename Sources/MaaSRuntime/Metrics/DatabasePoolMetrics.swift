import Postgres
import Prometheus

/// A service's Postgres pool, read at each scrape: connections by state, callers waiting for one,
/// the pool's size, and round trips to the server. Callers waiting is the sign of a pool too small
/// for its load (or of a database that has slowed down).
enum DatabasePoolMetrics {
  static func register(_ pool: PostgresPool, in metrics: ServerMetrics) {
    let registry = metrics.registry
    func connections(_ state: String) -> Gauge {
      registry.makeGauge(
        descriptor: .init(
          metricName: "maas_db_pool", unitName: "connections",
          helpText: "The Postgres pool's connections: idle, in use (checked out) or being opened."),
        labels: [("state", state)])
    }
    let (idle, inUse, opening) = (connections("idle"), connections("in_use"), connections("opening"))
    let waiting = registry.makeGauge(
      descriptor: .init(
        metricName: "maas_db_pool_waiting", unitName: "callers", helpText: "Callers waiting for a connection of the pool."))
    let maximum = registry.makeGauge(
      descriptor: .init(metricName: "maas_db_pool_max", unitName: "connections", helpText: "The most connections the pool opens."))
    maximum.set(Double(pool.configuration.maxConnections))
    let roundTrips = MirroredCounter(registry.makeCounter(
      descriptor: .init(
        metricName: "maas_db_round_trips", unitName: "total",
        helpText: "Round trips to Postgres: one per statement sent alone, one per pipeline of statements.")))
    metrics.onScrape {
      let statistics = pool.statistics
      idle.set(Double(statistics.idle))
      inUse.set(Double(statistics.checkedOut))
      opening.set(Double(statistics.opening))
      waiting.set(Double(statistics.waiting))
      roundTrips.follow(pool.roundTrips)
    }
  }
}
