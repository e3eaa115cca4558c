/// How log lines are written to stderr.
public enum LogFormat: String, Sendable, Hashable, CaseIterable {
  /// `2025-01-02T03:04:05.678Z info maas.quota: listening host=0.0.0.0 port=50051`, for people.
  case text
  /// One JSON object per line, for log collectors:
  /// `{"timestamp":"...","level":"info","label":"maas.quota","message":"listening","metadata":{...}}`.
  case json
}
