import Dispatch
import Foundation
import Synchronization

/// A thread of its own that runs jobs one at a time, in submission order.
///
/// Each connection has one, because libpq's calls block (connect, exec, reading results) and a
/// PGconn may be used by one thread at a time: blocking here keeps Swift's cooperative pool, which
/// has only as many threads as cores, free for everything else.
final class SerialWorker: Sendable {
  typealias Job = @Sendable () -> Void

  private struct Queue {
    var jobs: [Job] = []
    var head = 0
    var stopping = false
  }

  private let queue = Mutex(Queue())
  /// One signal per accepted job, and one for `stop`.
  private let wakeup = DispatchSemaphore(value: 0)

  /// Starts the thread. `onExit` runs on it after the last job, once `stop` has been called.
  init(name: String, onExit: @escaping @Sendable () -> Void) {
    let thread = Thread { [self] in
      self.runJobs()
      onExit()
    }
    thread.name = name
    thread.start()
  }

  /// Queues `job`; false (and the job never runs) once `stop` has been called.
  func submit(_ job: @escaping Job) -> Bool {
    let accepted = self.queue.withLock { queue in
      guard !queue.stopping else { return false }
      queue.jobs.append(job)
      return true
    }
    if accepted { self.wakeup.signal() }
    return accepted
  }

  /// Lets the jobs already queued run, then ends the thread. Idempotent.
  func stop() {
    let first = self.queue.withLock { queue in
      defer { queue.stopping = true }
      return !queue.stopping
    }
    if first { self.wakeup.signal() }
  }

  private func runJobs() {
    while true {
      self.wakeup.wait()
      let next: Job?? = self.queue.withLock { queue in
        guard queue.head < queue.jobs.count else { return queue.stopping ? .some(nil) : nil }
        let job = queue.jobs[queue.head]
        queue.head += 1
        if queue.head == queue.jobs.count {
          queue.jobs.removeAll(keepingCapacity: true)
          queue.head = 0
        }
        return job
      }
      switch next {
      case .some(.some(let job)): job()
      case .some(.none): return
      case .none: continue
      }
    }
  }
}

/// A value that only one worker thread touches, handed between closures that all run there.
/// The `@unchecked` is the worker's serial order: no two jobs run at once.
final class WorkerConfined<Value>: @unchecked Sendable {
  var value: Value?
  init() {}
}

/// One job's progress, shared by the worker that runs it and the task that may cancel it.
///
/// A cancel request goes to the server only while the job runs, and the worker cannot mark the
/// job done (and start the next one) while the request is on its way: so a cancel meant for this
/// statement never lands on the next one.
final class JobTicket: Sendable {
  private enum Phase { case queued, running, cancelledBeforeStart, done }

  private struct State {
    var phase = Phase.queued
    var cancelSent = false
  }

  private let state = Mutex(State())

  /// False if the job was cancelled before it started: skip it.
  func begin() -> Bool {
    self.state.withLock { state in
      guard state.phase == .queued else { return false }
      state.phase = .running
      return true
    }
  }

  /// Marks the job done; true if a cancel request was sent while it ran.
  func end() -> Bool {
    self.state.withLock { state in
      state.phase = .done
      return state.cancelSent
    }
  }

  /// A queued job will not run; a running one gets a cancel request, sent from a thread of its
  /// own because PQcancel opens a connection and waits for the server.
  func cancel(using handle: CancelHandle?) {
    let running = self.state.withLock { state in
      switch state.phase {
      case .queued:
        state.phase = .cancelledBeforeStart
        return false
      case .running:
        return true
      case .cancelledBeforeStart, .done:
        return false
      }
    }
    guard running, let handle else { return }
    Thread.detachNewThread { [self] in
      self.state.withLock { state in
        guard state.phase == .running, !state.cancelSent else { return }
        handle.cancel()
        state.cancelSent = true
      }
    }
  }
}
