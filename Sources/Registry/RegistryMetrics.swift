public import MaaSRuntime
import Prometheus

/// The registry's own metrics, read at each scrape: how ListModels pages were answered, from the
/// listing cache (the tenant's catalogue unchanged since the page was read) or from the database,
/// and how full the cache is. A falling cache share under steady load means the catalogues change
/// as often as they are listed, or `MAAS_REGISTRY_LIST_CACHE_MODELS` is too small for the pages
/// asked for.
public enum RegistryMetrics {
  public static func register(_ store: RegistryStore, in metrics: ServerMetrics) {
    let registry = metrics.registry
    let pages = LabelledCounters<String>(
      registry, metricName: "maas_registry_list_pages",
      helpText: "ListModels pages answered, from the listing cache or read from the database (while the cache is on)."
    ) { [("source", $0)] }
    let (cached, read) = (MirroredCounter(pages["cache"]), MirroredCounter(pages["database"]))
    let held = registry.makeGauge(
      descriptor: .init(metricName: "maas_registry_list_cache", unitName: "models", helpText: "Models the listing cache holds now."))
    let capacity = registry.makeGauge(
      descriptor: .init(
        metricName: "maas_registry_list_cache_max", unitName: "models", helpText: "The most models the listing cache holds."))
    metrics.onScrape {
      cached.follow(store.listingCacheHits)
      read.follow(store.listingCacheReads)
      let items = store.listingCacheItems
      held.set(Double(items?.held ?? 0))
      capacity.set(Double(items?.capacity ?? 0))
    }
  }
}
