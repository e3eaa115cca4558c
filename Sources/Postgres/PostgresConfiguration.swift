import Foundation

/// How a `PostgresPool` connects, how big it grows, and how long anything may take.
///
/// Every session the pool opens runs with `TimeZone = 'UTC'` and `DateStyle = 'ISO, MDY'`, so
/// that SQL date arithmetic (`date_trunc('day', now())`) means UTC days on every replica and
/// timestamps come back in the one text form the decoder reads.
public struct PostgresConfiguration: Sendable {
  /// A `postgresql://user:password@host:port/database?param=value` URL, or a libpq
  /// keyword/value string (`host=/run/postgresql dbname=maas`).
  public var url: String
  /// Shown in `pg_stat_activity`; a URL's own `application_name` wins.
  public var applicationName: String
  /// Connections opened at start-up and kept open while the pool runs.
  public var minConnections: Int
  /// The bound: never more connections than this, checked out or idle.
  public var maxConnections: Int
  /// How long `withConnection` (and everything built on it) waits for a connection before it
  /// throws `.poolExhausted` (or `.connection` when the server cannot be reached).
  public var acquireTimeout: Duration
  /// Most callers queued for a connection at once; the next one gets `.poolExhausted` at once.
  /// Past this the queue only adds waiting that ends in the same error `acquireTimeout` later,
  /// while it costs memory and a longer walk for every caller that leaves it.
  public var maxWaiters: Int = 1_000
  /// How long one connection attempt may take (libpq's `connect_timeout`: whole seconds, at
  /// least 2).
  public var connectTimeout: Duration
  /// The session's `statement_timeout`, and what each transaction sets with `SET LOCAL`; nil
  /// leaves the server's setting.
  public var statementTimeout: Duration?
  /// The session's `idle_in_transaction_session_timeout`: the server ends a session that sits
  /// inside a transaction, waiting for its client, longer than this, and so frees the locks it
  /// holds. It bounds what a client that stalls mid-transaction (a frozen process, a lost
  /// network) costs everyone else; nil leaves the server's setting (off by default).
  public var idleInTransactionTimeout: Duration?
  /// A connection idle longer than this answers `SELECT 1` before it is handed out again.
  public var healthCheckAfterIdle: Duration
  /// Statements slower than this are logged at warning level (with the first 512 bytes of their
  /// SQL and its length, never their parameters); nil turns that off.
  public var slowQueryThreshold: Duration?
  /// Statements prepared and kept per connection, least recently used evicted first; 0 sends
  /// every statement unprepared.
  public var statementCacheCapacity: Int
  /// How many times a transaction runs in all when it keeps failing with 40001 or 40P01.
  public var transactionMaxAttempts: Int
  /// The pause between failed connection attempts (per attempt, growing exponentially).
  public var reconnectBackoff: PostgresBackoff
  /// The pause before a transaction is run again after a serialization failure or deadlock.
  public var transactionRetryBackoff: PostgresBackoff
  /// Sessions run with `plan_cache_mode = force_generic_plan`: a prepared statement is planned
  /// once per connection rather than on every execution. Left to the server's `auto` otherwise,
  /// which for statements of many parameters (CTEs over `unnest` arrays) kept re-planning on
  /// every call. Right for statements whose best plan does not depend on the values (key
  /// lookups and writes); a query whose filters are optional parameters may do worse with it.
  public var genericPlans: Bool = false

  public init(
    url: String,
    applicationName: String = "maas",
    minConnections: Int = 1,
    maxConnections: Int = 10,
    acquireTimeout: Duration = .seconds(5),
    connectTimeout: Duration = .seconds(5),
    statementTimeout: Duration? = nil,
    idleInTransactionTimeout: Duration? = nil,
    healthCheckAfterIdle: Duration = .seconds(30),
    slowQueryThreshold: Duration? = .seconds(1),
    statementCacheCapacity: Int = 256,
    transactionMaxAttempts: Int = 10,
    reconnectBackoff: PostgresBackoff = PostgresBackoff(initial: .milliseconds(100), maximum: .seconds(5), jitter: 0.2),
    transactionRetryBackoff: PostgresBackoff = PostgresBackoff(initial: .milliseconds(5), maximum: .milliseconds(500), jitter: 1)
  ) {
    self.url = url
    self.applicationName = applicationName
    self.minConnections = minConnections
    self.maxConnections = maxConnections
    self.acquireTimeout = acquireTimeout
    self.connectTimeout = connectTimeout
    self.statementTimeout = statementTimeout
    self.idleInTransactionTimeout = idleInTransactionTimeout
    self.healthCheckAfterIdle = healthCheckAfterIdle
    self.slowQueryThreshold = slowQueryThreshold
    self.statementCacheCapacity = statementCacheCapacity
    self.transactionMaxAttempts = transactionMaxAttempts
    self.reconnectBackoff = reconnectBackoff
    self.transactionRetryBackoff = transactionRetryBackoff
  }

  /// Every problem with the values, all at once (empty when they are usable).
  public func problems() -> [String] {
    var problems: [String] = []
    if self.url.isEmpty { problems.append("url is empty") }
    if self.maxConnections < 1 { problems.append("maxConnections must be at least 1") }
    if self.minConnections < 0 || self.minConnections > self.maxConnections {
      problems.append("minConnections must be between 0 and maxConnections (\(self.maxConnections))")
    }
    if self.acquireTimeout <= .zero { problems.append("acquireTimeout must be positive") }
    if self.maxWaiters < 0 { problems.append("maxWaiters must be at least 0") }
    if self.connectTimeout <= .zero { problems.append("connectTimeout must be positive") }
    if let timeout = self.statementTimeout, timeout < .milliseconds(1) {
      problems.append("statementTimeout must be at least 1 ms (nil leaves the server's setting)")
    }
    if let timeout = self.idleInTransactionTimeout, timeout < .milliseconds(1) {
      problems.append("idleInTransactionTimeout must be at least 1 ms (nil leaves the server's setting)")
    }
    if self.statementCacheCapacity < 0 { problems.append("statementCacheCapacity must not be negative") }
    if self.transactionMaxAttempts < 1 { problems.append("transactionMaxAttempts must be at least 1") }
    return problems
  }

  /// What the connection's session sets right after connecting (parameterised through
  /// set_config, so nothing here is spliced into SQL).
  var sessionSettings: [(name: String, value: String)] {
    var settings = [("TimeZone", "UTC"), ("DateStyle", "ISO, MDY")]
    if let timeout = self.statementTimeout { settings.append(("statement_timeout", "\(timeout.wholeMilliseconds)")) }
    if let timeout = self.idleInTransactionTimeout {
      settings.append(("idle_in_transaction_session_timeout", "\(timeout.wholeMilliseconds)"))
    }
    if self.genericPlans { settings.append(("plan_cache_mode", "force_generic_plan")) }
    return settings
  }

  /// PQconnectdbParams' keyword/value pairs. Later pairs override what the URL sets, earlier
  /// ones are overridden by it.
  ///
  /// TCP keepalives and a user timeout (both overridable in the URL): without them, a connection
  /// whose server went away without a word (a network cut, a host lost) is found dead only when
  /// the kernel gives up retransmitting, about fifteen minutes, and the call on it waits that long
  /// past its deadline (a cancel is sent, but over another connection to the same dead host).
  /// With them, about half a minute (30 s of unacknowledged data; an idle connection is probed
  /// after 30 s, then every 10 s, three times).
  var connectionParameters: [(String, String)] {
    let seconds = max(2, Int((self.connectTimeout + .milliseconds(999)).components.seconds))
    return [
      ("application_name", self.applicationName),
      ("keepalives", "1"),
      ("keepalives_idle", "30"),
      ("keepalives_interval", "10"),
      ("keepalives_count", "3"),
      ("tcp_user_timeout", "30000"),
      ("dbname", self.url),
      ("connect_timeout", "\(seconds)"),
      ("client_encoding", "UTF8"),
    ]
  }
}

/// Exponential backoff with jitter: attempt n waits `initial * multiplier^(n-1)`, at most
/// `maximum`, less a random part of up to `jitter` of that (0: none, 1: anything from zero).
public struct PostgresBackoff: Sendable, Hashable {
  public var initial: Duration
  public var maximum: Duration
  public var multiplier: Double
  public var jitter: Double

  public init(initial: Duration, maximum: Duration, multiplier: Double = 2, jitter: Double = 0.2) {
    self.initial = initial
    self.maximum = maximum
    self.multiplier = multiplier
    self.jitter = min(max(jitter, 0), 1)
  }

  /// The pause before retry number `attempt` (1-based); `random` is uniform in 0..<1.
  public func delay(attempt: Int, random: Double) -> Duration {
    let exponent = Double(max(0, attempt - 1))
    let base = min(self.initial.seconds * pow(self.multiplier, exponent), self.maximum.seconds)
    return .seconds(base * (1 - self.jitter * random))
  }
}

extension Duration {
  var seconds: Double {
    self / .seconds(1)
  }

  var wholeMilliseconds: Int64 {
    self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000
  }
}
