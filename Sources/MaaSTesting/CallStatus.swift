public import GRPCCore

/// The status a call fails with, or nil if it succeeds: how tests check that a call was refused,
/// and with what. A thrown error that is not an `RPCError` comes back as UNKNOWN with its text.
public func status(_ call: () async throws -> some Any) async -> (code: RPCError.Code, message: String)? {
  do {
    _ = try await call()
    return nil
  } catch let error as RPCError {
    return (error.code, error.message)
  } catch {
    return (.unknown, "\(error)")
  }
}
