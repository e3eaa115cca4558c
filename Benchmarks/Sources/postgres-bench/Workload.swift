/// The two statements each peer runs: a primary-key select and a single-row update of a random
/// account, one statement per transaction (autocommit), as pgbench's select-only script and the
/// update script given to it.
enum Workload: String, CaseIterable {
  case select
  case update

  var label: String {
    switch self {
    case .select: return "select by primary key"
    case .update: return "single-row update"
    }
  }
}

enum Peer: String, CaseIterable {
  case pgbench
  case swift

  var label: String {
    switch self {
    case .pgbench: return "pgbench"
    case .swift: return "Swift PostgresPool"
    }
  }
}
