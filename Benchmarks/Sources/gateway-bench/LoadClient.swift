import BenchSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The callers of a gRPC cell: `list_load` (Benchmarks/load/list_load.cc), closed-loop callers in
/// C++ over grpc C++, started once per cell. The load shares the two cores with the services it
/// measures, as pgbench does with Postgres; in C++ it takes less of them than callers in this
/// Swift process did (through the shim client transport: 121-132 µs of CPU per call at 16
/// callers, against the figure the `bench` column shows now).
struct LoadClient {
  /// The `list_load` executable.
  var executable: String

  /// `list` made by `concurrency` callers, each call with a deadline of `timeout`: a warm-up,
  /// then the measured phase, with the CPU every process used over the measured phase
  /// (`list_load` in "bench"). Each answer must be a full first page of `pageSize` models with a
  /// next-page token; any other counts as an error.
  func measure(
    _ list: ListRequest, pageSize: Int, timeout: Duration, concurrency: Int, seconds: Int, warmUpSeconds: Int,
    cpu: CPUAccounting
  ) throws -> Cell {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(benchName)-load-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    // A FIFO rather than a file: the phase lines must be read the moment they are written, so
    // that the CPU snapshots bracket the measured phase, without polling.
    let fifo = directory.appendingPathComponent("stdout").path
    guard mkfifo(fifo, 0o600) == 0 else { throw BenchError("mkfifo \(fifo) failed: errno \(errno)") }
    let stderrPath = directory.appendingPathComponent("stderr").path
    let arguments =
      [
        list.target, list.method, list.message.map { String(format: "%02x", $0) }.joined(), String(pageSize),
        String(concurrency), String(warmUpSeconds), String(seconds), String(timeout.components.seconds * 1000),
      ] + list.metadata.flatMap { [$0.0, $0.1] }
    guard FileManager.default.isExecutableFile(atPath: self.executable) else {
      throw BenchError("no load client at \(self.executable) (`make bench-gateway` builds it)")
    }
    // The reading end is opened first and without waiting: the child opens the writing end
    // before it execs, which would wait for a reader, and spawn waits for the exec. Reads then
    // block until a line comes.
    let descriptor = open(fifo, O_RDONLY | O_NONBLOCK)
    guard descriptor >= 0 else { throw BenchError("open \(fifo) failed: errno \(errno)") }
    defer { close(descriptor) }
    let pid = try spawn(self.executable, arguments, stdout: fifo, stderr: stderrPath)
    _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
    var lines = LineReader(descriptor: descriptor)

    let accounting = cpu.counting(pid, in: "bench")
    var before: CPUAccounting.Snapshot?
    var usage: CPUUsage?
    var result: (calls: Int, errors: Int, elapsed: Int64)?
    var firstError: String?
    var latencies: [Int64] = []
    while let line = lines.next() {
      let fields = line.split(separator: " ", maxSplits: 1)
      switch fields.first {
      case "measuring": before = accounting.snapshot()
      case "measured": if let before { usage = CPUAccounting.usage(from: before, to: accounting.snapshot()) }
      case "result":
        let numbers = line.split(separator: " ").dropFirst().compactMap { Int64($0) }
        if numbers.count == 3 { result = (Int(numbers[0]), Int(numbers[1]), numbers[2]) }
      case "error": firstError = fields.count > 1 ? String(fields[1]) : "?"
      case "latencies": latencies = line.split(separator: " ").dropFirst().compactMap { Int64($0) }
      default: break
      }
    }
    let status = try waitForExit(pid, executable: self.executable)
    guard status == 0, let result, let usage, latencies.count == result.calls else {
      let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
      throw BenchError("\(self.executable) (\(concurrency) callers) exited with \(status) without its figures: \(stderr)")
    }
    if let firstError {
      note("\(result.errors) calls failed (\(list.method), \(concurrency) callers); the first: \(firstError)")
    }
    let measurement = BenchMeasurement(latenciesNanoseconds: latencies, seconds: Double(result.elapsed) / 1e9, errors: result.errors)
    return Cell(measurement: measurement, cpu: usage, firstError: firstError)
  }
}

/// Lines read from a file descriptor with read(2), until its end.
private struct LineReader {
  let descriptor: Int32
  private var buffer: [UInt8] = []
  private var start = 0
  private var ended = false

  init(descriptor: Int32) { self.descriptor = descriptor }

  mutating func next() -> String? {
    while true {
      if let newline = self.buffer[self.start...].firstIndex(of: UInt8(ascii: "\n")) {
        let line = String(decoding: self.buffer[self.start..<newline], as: UTF8.self)
        self.start = newline + 1
        return line
      }
      if self.ended {
        guard self.start < self.buffer.count else { return nil }
        defer { self.start = self.buffer.count }
        return String(decoding: self.buffer[self.start...], as: UTF8.self)
      }
      self.buffer.removeFirst(self.start)
      self.start = 0
      var chunk = [UInt8](repeating: 0, count: 65_536)
      let count = chunk.withUnsafeMutableBytes { read(self.descriptor, $0.baseAddress, $0.count) }
      if count > 0 {
        self.buffer.append(contentsOf: chunk[..<count])
      } else if count == 0 || errno != EINTR {
        self.ended = true
      }
    }
  }
}
