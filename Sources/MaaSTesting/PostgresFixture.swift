import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Real Postgres clusters for integration tests, made by `scripts/postgres` (the same script
/// `make run` uses), so tests run against what developers run.
///
/// Each test process has its own clusters under `<repo>/.run/test-postgres-<pid>[-<name>]`, on
/// free loopback ports, created on first use. A watchdog process destroys them once the test
/// process has gone, however it ended; clusters of test processes that are gone (a watchdog
/// that was itself killed) are destroyed the next time a test process asks for one.
///
/// Test clusters run with `fsync = off`: a server restart, even `immediate`, loses no
/// acknowledged write (the WAL is in the kernel's page cache before a commit returns); only a
/// crash of the whole machine would, and then the cluster is thrown away anyway.
public enum PostgresFixture {
  /// The test process's shared cluster, started on the first call; concurrent callers share
  /// one start. Suites keep apart by each creating their own database with
  /// `createDatabase(named:)`.
  ///
  /// Do not stop or restart it: other suites of the process run on it at the same time. A test
  /// that restarts the server takes a cluster of its own from `privateCluster(named:)`.
  ///
  /// - Throws: `PostgresFixtureError` when the cluster cannot be started (its output says why);
  ///   every later call throws the same error rather than trying again.
  public static func shared() async throws -> PostgresTestCluster {
    try await SharedCluster.instance.cluster()
  }

  /// A cluster for one test alone, which it may stop, restart and destroy; `name` (lowercase
  /// letters, digits and `-`) keeps its directory apart from the others of the process.
  ///
  /// - Throws: `PostgresFixtureError`.
  public static func privateCluster(named name: String) async throws -> PostgresTestCluster {
    guard name.range(of: "^[a-z0-9][a-z0-9-]{0,40}$", options: .regularExpression) != nil else {
      throw PostgresFixtureError(command: "privateCluster(named: \(name))", status: nil,
        output: "a cluster name is 1 to 41 lowercase letters, digits and '-'")
    }
    return try await PostgresTestCluster.start(suffix: "-" + name)
  }
}

/// A role of the clusters `scripts/postgres` makes.
public enum PostgresRole: String, Sendable, CaseIterable {
  /// `maas_app`: what services connect as; no BYPASSRLS, so row-level security applies.
  case app = "maas_app"
  /// `maas_owner`: owns the databases and the service schemas, runs migrations.
  case owner = "maas_owner"
  /// `postgres`: the superuser.
  case admin = "postgres"
}

/// One running cluster of `scripts/postgres`, listening on 127.0.0.1:`port`.
public struct PostgresTestCluster: Sendable {
  /// The cluster's directory, as given to `scripts/postgres --dir`.
  public let directory: String
  /// Keeps the port this cluster's while it is stopped, for as long as any copy of it lives.
  private let reservation: LoopbackPortReservation
  public var port: Int { self.reservation.port }

  init(directory: String, reservation: LoopbackPortReservation) {
    self.directory = directory
    self.reservation = reservation
  }

  /// `postgresql://maas_app@127.0.0.1:PORT/maas`.
  public var appURL: String { self.url(role: .app) }
  /// `postgresql://maas_owner@127.0.0.1:PORT/maas`.
  public var ownerURL: String { self.url(role: .owner) }
  /// `postgresql://postgres@127.0.0.1:PORT/maas`: the superuser.
  public var adminURL: String { self.url(role: .admin) }

  /// A libpq URL for `role` and `database` (no password: the cluster trusts loopback).
  public func url(role: PostgresRole, database: String = "maas") -> String {
    "postgresql://\(role.rawValue)@127.0.0.1:\(self.port)/\(database)"
  }

  /// Creates database `name`, owned by `maas_owner` and open to `maas_app`, dropping any
  /// database of that name first (connections to it are closed), so the suite starts empty.
  /// Names are per cluster: give each suite its own.
  ///
  /// - Parameter name: a lowercase SQL identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes), not
  ///   `maas`, `postgres` or a template.
  /// - Throws: `PostgresFixtureError` for a bad name or when psql fails.
  public func createDatabase(named name: String) async throws -> PostgresTestDatabase {
    guard name.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil,
      !["maas", "postgres", "template0", "template1"].contains(name)
    else {
      throw PostgresFixtureError(command: "createDatabase(named: \(name))", status: nil,
        output: "a test database name is a lowercase identifier other than maas, postgres or a template")
    }
    // psql quotes the name itself (:"db"), so no SQL is built from strings here.
    let sql = """
      DROP DATABASE IF EXISTS :"db" WITH (FORCE);
      CREATE DATABASE :"db" OWNER maas_owner;
      GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO maas_app;
      """
    _ = try await PostgresScript.run(
      ["psql", "--dir", self.directory, "--role", "admin", "-X", "-q", "-v", "ON_ERROR_STOP=1",
       "-v", "db=\(name)"],
      input: sql)
    return PostgresTestDatabase(name: name, cluster: self)
  }

  /// How `restart(mode:)` stops the server before starting it again.
  public enum StopMode: String, Sendable {
    /// Ends sessions, checkpoints and shuts down cleanly.
    case fast
    /// Kills the server like a crash; it recovers from the WAL when it starts.
    case immediate
  }

  /// Restarts the server (`pg_ctl restart`) and waits until it accepts connections again. Every
  /// open connection is broken.
  ///
  /// - Throws: `PostgresFixtureError`.
  public func restart(mode: StopMode = .fast) async throws {
    _ = try await PostgresScript.run(["restart", "--dir", self.directory, "--mode", mode.rawValue])
  }

  /// Stops the server cleanly (`pg_ctl stop -m fast`); the data stays for `start()`.
  ///
  /// - Throws: `PostgresFixtureError`.
  public func stop() async throws {
    _ = try await PostgresScript.run(["stop", "--dir", self.directory])
  }

  /// Starts the server again after `stop()`, on the same port, which nothing else can have
  /// taken meanwhile (see `LoopbackPortReservation`).
  ///
  /// - Throws: `PostgresFixtureError`.
  public func start() async throws {
    _ = try await PostgresScript.run(
      ["start", "--dir", self.directory, "--port", String(self.port), "--no-fsync"])
  }

  /// Stops the server and deletes the cluster now rather than when the process ends.
  ///
  /// - Throws: `PostgresFixtureError`.
  public func destroy() async throws {
    _ = try await PostgresScript.run(["destroy", "--dir", self.directory, "--yes"])
  }

  /// Creates, starts and watches the cluster `.run/test-postgres-<pid><suffix>` on a port kept
  /// for it.
  static func start(suffix: String) async throws -> PostgresTestCluster {
    await PostgresScript.destroyClustersOfEndedProcesses()
    let directory = PostgresScript.runDirectory + "/test-postgres-\(getpid())\(suffix)"
    let reservation = try LoopbackPortReservation()
    _ = try await PostgresScript.run(
      ["start", "--dir", directory, "--port", String(reservation.port), "--no-fsync"])
    try PostgresScript.spawnWatchdog(directory: directory)
    return PostgresTestCluster(directory: directory, reservation: reservation)
  }
}

/// A database of a test cluster made by `createDatabase(named:)`.
public struct PostgresTestDatabase: Sendable {
  public let name: String
  public let cluster: PostgresTestCluster

  /// `postgresql://maas_app@127.0.0.1:PORT/NAME`: what services under test connect as.
  public var appURL: String { self.cluster.url(role: .app, database: self.name) }
  /// `postgresql://maas_owner@127.0.0.1:PORT/NAME`: what migrations run as.
  public var ownerURL: String { self.cluster.url(role: .owner, database: self.name) }
  /// `postgresql://postgres@127.0.0.1:PORT/NAME`: the superuser.
  public var adminURL: String { self.cluster.url(role: .admin, database: self.name) }
}

/// A `scripts/postgres` command that failed; `output` is what it printed (stderr and stdout).
public struct PostgresFixtureError: Error, CustomStringConvertible {
  public let command: String
  /// The exit status, or nil when the command did not run.
  public let status: Int32?
  public let output: String

  public var description: String {
    "\(self.command) failed\(self.status.map { " (exit status \($0))" } ?? ""): \(self.output)"
  }
}

/// Starts the shared cluster once per process.
private actor SharedCluster {
  static let instance = SharedCluster()
  private var starting: Task<PostgresTestCluster, any Error>?

  func cluster() async throws -> PostgresTestCluster {
    if let starting = self.starting { return try await starting.value }
    let starting = Task { try await PostgresTestCluster.start(suffix: "") }
    self.starting = starting
    return try await starting.value
  }
}

/// Runs `scripts/postgres`.
private enum PostgresScript {
  static let repositoryRoot = MaaSTesting.repositoryRoot
  static let script = repositoryRoot + "/scripts/postgres"
  static let runDirectory = repositoryRoot + "/.run"

  /// Runs the script to completion and returns its stdout; throws with its output when it fails.
  static func run(_ arguments: [String], input: String? = nil) async throws -> String {
    let command = "scripts/postgres \(arguments.joined(separator: " "))"
    let outcome: ProcessOutcome
    do {
      outcome = try await runToCompletion(self.script, arguments, input: input, directory: self.repositoryRoot)
    } catch {
      throw PostgresFixtureError(command: command, status: nil, output: "\(error)")
    }
    guard outcome.succeeded else {
      throw PostgresFixtureError(
        command: command, status: outcome.status, output: outcome.standardError + outcome.standardOutput)
    }
    return outcome.standardOutput
  }

  /// Starts `scripts/postgres watch`, which destroys the cluster once this process has exited.
  /// Spawned by hand rather than with `Process` so that it can leave the test runner's session
  /// (Ctrl-C in the terminal must not kill it before it has cleaned up) and start with no
  /// signal blocked (test runners block SIGINT and SIGTERM, and children inherit the mask).
  static func spawnWatchdog(directory: String) throws {
    let arguments = [self.script, "watch", "--dir", directory, "--pid", String(getpid())]
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    #if os(Linux)
    // Nothing of the test process (its pipes to `swift test`, sockets) is to live on in the
    // watchdog. glibc 2.34+ has closefrom for posix_spawn, but as a GNU extension Swift does not
    // import it.
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
      _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
    }
    #endif

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
    #if os(Linux)
    flags |= 0x80  // POSIX_SPAWN_SETSID (glibc 2.26+), a GNU extension Swift does not import
    #endif
    posix_spawnattr_setflags(&attributes, Int16(flags))

    var pid = pid_t()
    let status = posix_spawn(&pid, self.script, &actions, &attributes, &argv, environ)
    guard status == 0 else {
      throw PostgresFixtureError(command: "scripts/postgres watch --dir \(directory)", status: nil,
        output: "posix_spawn failed: \(String(cString: strerror(status)))")
    }
  }

  /// Destroys the `.run/test-postgres-<pid>*` clusters whose test process no longer exists.
  static func destroyClustersOfEndedProcesses() async {
    let prefix = "test-postgres-"
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: self.runDirectory)) ?? []
    for entry in entries where entry.hasPrefix(prefix) {
      guard let pid = pid_t(entry.dropFirst(prefix.count).prefix(while: \.isNumber)),
        pid != getpid(), kill(pid, 0) == -1, errno == ESRCH
      else { continue }
      _ = try? await self.run(["destroy", "--dir", self.runDirectory + "/" + entry, "--yes"])
    }
  }
}

