import Synchronization

/// A pointer to a shim object, safe to hand between tasks: the shim's objects may be used from
/// any thread (CGRPCShim.h), and who may use them when is settled by the types that hold them.
struct ShimPointer: @unchecked Sendable {
  let raw: OpaquePointer
}

/// A shim call handle that the owner gives back exactly once.
///
/// Every use holds the lock across the C call, so `take` (before release) cannot free the handle
/// underneath a write on another task. The shim never calls back into Swift synchronously from
/// these functions, so holding the lock cannot deadlock.
final class ShimHandle: Sendable {
  private let pointer: Mutex<ShimPointer?>

  init(_ pointer: OpaquePointer?) {
    self.pointer = Mutex(pointer.map(ShimPointer.init(raw:)))
  }

  /// Runs `body` with the handle, or returns nil if there is none (not created yet, or released).
  func with<R: Sendable>(_ body: (OpaquePointer) -> R) -> R? {
    self.pointer.withLock { pointer in pointer.map { body($0.raw) } }
  }

  /// Sets the handle once the shim has created the call.
  func set(_ pointer: OpaquePointer) {
    let wrapped = ShimPointer(raw: pointer)
    self.pointer.withLock { $0 = wrapped }
  }

  /// Takes the handle for release; later uses find none.
  func take() -> OpaquePointer? {
    self.pointer.withLock { pointer in
      defer { pointer = nil }
      return pointer
    }?.raw
  }
}
