import Foundation
import MaaSTesting
import Testing

@Suite("PipeCollector reads a child's output as it comes")
struct PipeCollectorTests {
  @Test("a child that writes far more than a pipe holds runs to its end, and every byte is kept")
  func drainsWhileTheChildRuns() async throws {
    // 1 MB is sixteen pipe buffers: unread, the child would block on its first 64 KiB for good.
    let (process, collector) = try Self.start("head -c 1000000 /dev/zero | tr '\\0' x; echo; echo done")
    defer { if process.isRunning { process.terminate() } }
    let output = await collector.all(within: .seconds(60))
    #expect(collector.ended)
    #expect(output.count == 1_000_000 + 1 + 5)
    #expect(output.prefix(1_000_000).allSatisfy { $0 == UInt8(ascii: "x") })
    #expect(String(decoding: output.suffix(5), as: UTF8.self) == "done\n")
  }

  @Test("firstLine answers the first line without its newline, and nil when the output ends without one")
  func firstLine() async throws {
    let (_, lines) = try Self.start("printf 'listening on 127.0.0.1:1\\nmore\\n'")
    #expect(await lines.firstLine(within: .seconds(60)) == "listening on 127.0.0.1:1")
    let (_, partial) = try Self.start("printf 'no newline'")
    #expect(await partial.firstLine(within: .seconds(60)) == nil)
    #expect(partial.ended)
    #expect(partial.text == "no newline")
  }

  private static func start(_ script: String) throws -> (Process, PipeCollector) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    return (process, PipeCollector(reading: pipe.fileHandleForReading))
  }
}
