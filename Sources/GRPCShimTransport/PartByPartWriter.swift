import GRPCCore

/// A writer that hands parts to the shim one at a time, in order; a batch is its parts in turn.
protocol PartByPartWriter: ClosableRPCWriterProtocol {}

extension PartByPartWriter {
  func write(contentsOf elements: some Sequence<Element>) async throws {
    for element in elements { try await self.write(element) }
  }
}
