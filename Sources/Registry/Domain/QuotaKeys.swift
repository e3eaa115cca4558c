import MaaSRuntime

/// How the registry derives the keys of its quota calls from the caller's.
enum QuotaKeys {
  /// Reserve's key: the method and a digest of the caller's key (traceable in the quota ledger,
  /// bounded to the quota service's 128 bytes), plus `attempt`, which is new for every attempt:
  /// an attempt that did not commit released its hold (or let it lapse), so a retry must not be
  /// handed that reservation back.
  static func reserve(method: String, callerKey: String, attempt: String) -> String {
    var canonical = Canonical()
    canonical.add(callerKey)
    return "registry:\(method):\(canonical.fingerprint.prefix(32)):\(attempt)"
  }

  static func commit(_ reservationID: String) -> String { "registry:commit:\(reservationID)" }

  static func release(_ reservationID: String) -> String { "registry:release:\(reservationID)" }
}
