import Foundation

/// Where the Python gRPC peer of the tests lives: the venv's python that `scripts/python-env`
/// creates, the scripts in Tests/Interop and the stubs generated into .build-python/.
public enum PythonEnvironment {
  /// `MAAS_PYTHON` (the Makefile sets it), else the repository's `.venv/bin/python`.
  public static var python: String {
    if let python = ProcessInfo.processInfo.environment["MAAS_PYTHON"], !python.isEmpty {
      return python
    }
    return repositoryRoot + "/.venv/bin/python"
  }

  public static var stubs: String { repositoryRoot + "/.build-python" }

  public static func script(_ name: String) -> String { repositoryRoot + "/Tests/Interop/\(name)" }

  /// Whether `scripts/python-env` has run: the interpreter and the stubs are there.
  public static var isSetUp: Bool {
    FileManager.default.isExecutableFile(atPath: python)
      && FileManager.default.fileExists(atPath: stubs + "/maas/echo/v1/echo_pb2.py")
  }

  /// The environment of a Python subprocess: ours, with the generated stubs importable.
  public static var environment: [String: String] {
    var environment = ProcessInfo.processInfo.environment
    let inherited = environment["PYTHONPATH"].map { ":" + $0 } ?? ""
    environment["PYTHONPATH"] = stubs + inherited
    // Output reaches the test as it is printed, and no __pycache__ lands in Tests/Interop.
    environment["PYTHONUNBUFFERED"] = "1"
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    return environment
  }
}
