import Foundation
import Postgres
import Testing

struct Labels: Codable, Equatable {
  var name: String
  var labels: [String: String]
  var replicas: Int
}

enum ModelState: String, PostgresEncodable, PostgresDecodable {
  case active = "ACTIVE"
  case archived = "ARCHIVED"
}

@Suite("Values round-trip through a real Postgres")
struct ValueTests {
  @Test("Every supported type round-trips through a table, and NULL in every column comes back as nil")
  func everyTypeRoundTrips() async throws {
    try await withPool { pool in
      _ = try await pool.execute(
        """
        CREATE TABLE values_round_trip (
          id int8 PRIMARY KEY, t text, i int8, i4 int4, i2 int2, b bool, d float8, r float4,
          bytes bytea, u uuid, at timestamptz, doc jsonb, plain json, names text[], numbers int8[],
          ids uuid[], amount numeric, state text, blob bytea, times timestamptz[]
        )
        """)
      let at = Date(timeIntervalSince1970: 1_717_171_717.123456)
      let uuid = UUID()
      let other = UUID()
      let labels = Labels(name: "llama", labels: ["team": "ml", "tier": "gold"], replicas: 3)
      let names = ["a", "b,c", "", "NULL", "q\"uote", "back\\slash", "{brace}", " space ", "ünïcødé 😀"]
      let numbers: [Int64] = [.min, -1, 0, 1, .max]
      let times = [at, Date(timeIntervalSince1970: 0.000_001), Date(timeIntervalSince1970: -86_400.5)]
      let inserted = try await pool.execute(
        "INSERT INTO values_round_trip VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        [
          1, "text", Int64.max, Int32.min, Int16(-7), true, 3.5, Float(1.25), [UInt8](0...255), uuid, at,
          try PostgresJSON(encoding: labels), PostgresJSON(#"{"a": [1, 2]}"#), names, numbers, [uuid, other], "12.50",
          ModelState.archived, Data([0, 1, 2]), times,
        ])
      #expect(inserted == 1)
      let nothing: String? = nil
      _ = try await pool.execute("INSERT INTO values_round_trip (id, t) VALUES ($1, $2)", [2, nothing])

      let rows = try await pool.query("SELECT * FROM values_round_trip ORDER BY id", [])
      #expect(rows.count == 2)
      let row = rows[0]
      #expect(try row.decode(Int.self, column: "id") == 1)
      #expect(try row.decode(String.self, column: "t") == "text")
      #expect(try row.decode(Int64.self, column: "i") == .max)
      #expect(try row.decode(Int32.self, column: "i4") == .min)
      #expect(try row.decode(Int16.self, column: "i2") == -7)
      #expect(try row.decode(Bool.self, column: "b") == true)
      #expect(try row.decode(Double.self, column: "d") == 3.5)
      #expect(try row.decode(Float.self, column: "r") == 1.25)
      #expect(try row.decode([UInt8].self, column: "bytes") == [UInt8](0...255))
      #expect(try row.decode(Data.self, column: "blob") == Data([0, 1, 2]))
      #expect(try row.decode(UUID.self, column: "u") == uuid)
      #expect(abs(try row.decode(Date.self, column: "at").timeIntervalSince(at)) < 0.000_001)
      #expect(try row.decode(PostgresJSON.self, column: "doc").decode(Labels.self) == labels)
      #expect(try row.decode(PostgresJSON.self, column: "plain").text == #"{"a": [1, 2]}"#)
      #expect(try row.decode([String].self, column: "names") == names)
      #expect(try row.decode([Int64].self, column: "numbers") == numbers)
      #expect(try row.decode([UUID].self, column: "ids") == [uuid, other])
      let decodedTimes = try row.decode([Date].self, column: "times")
      #expect(decodedTimes.count == times.count)
      for (decoded, sent) in zip(decodedTimes, times) { #expect(abs(decoded.timeIntervalSince(sent)) < 0.000_001) }
      #expect(try row.decode(String.self, column: "amount") == "12.50")
      #expect(try row.decode(Double.self, column: "amount") == 12.5)
      #expect(try row.decode(ModelState.self, column: "state") == .archived)
      #expect(try row.decode(Int.self, at: 0) == 1)

      let empty = rows[1]
      for column in empty.columns where column.name != "id" {
        #expect(empty.cell(column.index).isNull, "\(column.name) should be NULL")
      }
      #expect(try empty.decode(String?.self, column: "t") == nil)
      #expect(try empty.decode(Int64?.self, column: "i") == nil)
      #expect(try empty.decode(Int32?.self, column: "i4") == nil)
      #expect(try empty.decode(Bool?.self, column: "b") == nil)
      #expect(try empty.decode(Double?.self, column: "d") == nil)
      #expect(try empty.decode([UInt8]?.self, column: "bytes") == nil)
      #expect(try empty.decode(UUID?.self, column: "u") == nil)
      #expect(try empty.decode(Date?.self, column: "at") == nil)
      #expect(try empty.decode(PostgresJSON?.self, column: "doc") == nil)
      #expect(try empty.decode([String]?.self, column: "names") == nil)
      #expect(try empty.decode([Int64]?.self, column: "numbers") == nil)
      #expect(try empty.decode(ModelState?.self, column: "state") == nil)
    }
  }

  @Test("Parameters of every type come back unchanged from a bare SELECT, NULLs included")
  func parametersEchoBack() async throws {
    try await withPool { pool in
      let uuid = UUID()
      let noInt: Int? = nil
      let noUUID: UUID? = nil
      let row = try #require(
        try await pool.query(
          "SELECT $1::int8 AS i, $2::bool AS b, $3::uuid AS u, $4::text[] AS names, $5::int8 AS missing, $6::uuid AS no_uuid, $7 AS untyped",
          [42, false, uuid, [String](), noInt, noUUID, "plain"]
        ).first)
      #expect(try row.decode(Int.self, column: "i") == 42)
      #expect(try row.decode(Bool.self, column: "b") == false)
      #expect(try row.decode(UUID.self, column: "u") == uuid)
      #expect(try row.decode([String].self, column: "names") == [])
      #expect(try row.decode(Int?.self, column: "missing") == nil)
      #expect(try row.decode(UUID?.self, column: "no_uuid") == nil)
      #expect(try row.decode(String.self, column: "untyped") == "plain")
    }
  }

  @Test("Odd strings survive: quotes, backslashes, unicode, empty, the word NULL, and 10 KB")
  func oddStrings() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE values_odd_strings (id int4 PRIMARY KEY, s text NOT NULL)")
      let strings = [
        "", "'", "''; DROP TABLE values_odd_strings; --", "\"double\"", "back\\slash\\", "\\x00ff", "NULL",
        "tab\tnew\nline\r", "ünïcødé", "日本語", "👩‍👩‍👧‍👦", "$1", "%s %d",
        String(repeating: "ab'\"\\é😀", count: 1500),
      ]
      #expect(strings.last!.utf8.count > 10_000)
      for (index, string) in strings.enumerated() {
        _ = try await pool.execute("INSERT INTO values_odd_strings (id, s) VALUES ($1, $2)", [Int32(index), string])
        let echoed = try #require(try await pool.query("SELECT $1::text AS s", [string]).first)
        #expect(try echoed.decode(String.self, column: "s") == string)
      }
      let rows = try await pool.query("SELECT id, s FROM values_odd_strings ORDER BY id", [])
      #expect(try rows.map { try $0.decode(String.self, column: "s") } == strings)
    }
  }

  @Test("Text with a NUL character is refused before it is sent")
  func nulCharacterIsRefused() async throws {
    try await withPool { pool in
      let error = await #expect(throws: PostgresError.self) {
        _ = try await pool.query("SELECT $1::text AS s", ["before\u{0}after"])
      }
      #expect(error?.kind == .encoding)
      // The connection is untouched by a parameter that never left the process.
      let one = try await pool.query("SELECT 1 AS one", [])[0].decode(Int.self, column: "one")
      #expect(one == 1)
    }
  }

  @Test("timestamptz decodes in any session time zone, with odd offsets, BC and infinity")
  func timestampsInTimeZones() async throws {
    try await withPool { pool in
      let at = Date(timeIntervalSince1970: 1_717_171_717.5)
      try await pool.transaction { tx in
        _ = try await tx.query("SELECT set_config('TimeZone', 'Asia/Kolkata', true)", [])
        let row = try #require(try await tx.query("SELECT $1::timestamptz AS at, $1::timestamptz::text AS text", [at]).first)
        #expect(try row.decode(String.self, column: "text").hasSuffix("+05:30"))
        #expect(try row.decode(Date.self, column: "at") == at)

        // Amsterdam's local mean time before 1909 was 19 minutes 32 seconds ahead of UTC.
        _ = try await tx.query("SELECT set_config('TimeZone', 'Europe/Amsterdam', true)", [])
        let old = try #require(try await tx.query("SELECT '1900-01-01 00:00:00+00'::timestamptz AS at, '1900-01-01 00:00:00+00'::timestamptz::text AS text", []).first)
        #expect(try old.decode(String.self, column: "text") == "1900-01-01 00:19:32+00:19:32")
        #expect(try old.decode(Date.self, column: "at") == Date(timeIntervalSince1970: -2_208_988_800))
      }
      let ancient = try #require(
        try await pool.query("SELECT '0044-03-15 12:00:00+00 BC'::timestamptz AS at, extract(epoch FROM '0044-03-15 12:00:00+00 BC'::timestamptz)::float8 AS epoch", []).first)
      #expect(try ancient.decode(Date.self, column: "at") == Date(timeIntervalSince1970: try ancient.decode(Double.self, column: "epoch")))

      let forever = Date(timeIntervalSinceReferenceDate: .infinity)
      let infinite = try #require(try await pool.query("SELECT 'infinity'::timestamptz AS at, $1::timestamptz = 'infinity' AS same", [forever]).first)
      #expect(try infinite.decode(Date.self, column: "at") == forever)
      #expect(try infinite.decode(Bool.self, column: "same"))

      let day = try #require(try await pool.query("SELECT '2024-02-29'::date AS day, '2024-02-29 10:00:00'::timestamp AS local", []).first)
      #expect(try day.decode(Date.self, column: "day") == Date(timeIntervalSince1970: 1_709_164_800))
      #expect(try day.decode(Date.self, column: "local") == Date(timeIntervalSince1970: 1_709_164_800 + 36_000))
    }
  }

  @Test("Arrays decode from every element type they may come as, and refuse what does not fit")
  func arrays() async throws {
    try await withPool { pool in
      let row = try #require(
        try await pool.query(
          """
          SELECT ARRAY[1, 2]::int4[] AS small, ARRAY['x', 'y']::varchar[] AS varchars, '{}'::text[] AS empty,
                 ARRAY['a', NULL] AS with_null, ARRAY[[1, 2], [3, 4]] AS square, '[0:1]={7,8}'::int8[] AS shifted
          """, []
        ).first)
      #expect(try row.decode([Int64].self, column: "small") == [1, 2])
      #expect(try row.decode([Int32].self, column: "small") == [1, 2])
      #expect(try row.decode([String].self, column: "varchars") == ["x", "y"])
      #expect(try row.decode([String].self, column: "empty") == [])
      #expect(try row.decode([Int].self, column: "shifted") == [7, 8])
      let nullElement = #expect(throws: PostgresError.self) { _ = try row.decode([String].self, column: "with_null") }
      #expect(nullElement?.kind == .decoding)
      let square = #expect(throws: PostgresError.self) { _ = try row.decode([Int64].self, column: "square") }
      #expect(square?.message.contains("multidimensional") == true)
    }
  }

  @Test("Decoding checks the column type, NULL, and the column name, with errors that say which")
  func decodingErrors() async throws {
    try await withPool { pool in
      let row = try #require(
        try await pool.query("SELECT 1::int8 AS n, 'x'::text AS s, NULL::text AS nothing, 3000000000::int8 AS big, 'not json'::text AS doc", []).first)
      let wrongType = #expect(throws: PostgresError.self) { _ = try row.decode(String.self, column: "n") }
      #expect(wrongType?.kind == .decoding)
      #expect(wrongType?.message.contains("\"n\"") == true)
      #expect(wrongType?.message.contains("int8") == true)
      #expect(throws: PostgresError.self) { _ = try row.decode(Int.self, column: "s") }
      #expect(throws: PostgresError.self) { _ = try row.decode(Bool.self, column: "n") }
      #expect(throws: PostgresError.self) { _ = try row.decode(PostgresJSON.self, column: "doc") }
      let null = #expect(throws: PostgresError.self) { _ = try row.decode(String.self, column: "nothing") }
      #expect(null?.message.contains("NULL") == true)
      let overflow = #expect(throws: PostgresError.self) { _ = try row.decode(Int32.self, column: "big") }
      #expect(overflow?.kind == .decoding)
      let missing = #expect(throws: PostgresError.self) { _ = try row.decode(Int.self, column: "nope") }
      #expect(missing?.message.contains("nope") == true)
      #expect(throws: PostgresError.self) { _ = try row.decode(Int.self, at: 9) }
      let badState = try #require(try await pool.query("SELECT 'DELETED' AS state", []).first)
      #expect(throws: PostgresError.self) { _ = try badState.decode(ModelState.self, column: "state") }
    }
  }

  @Test("A result reports its command tag and affected rows")
  func commandTags() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE values_tags (n int4)")
      #expect(try await pool.execute("INSERT INTO values_tags SELECT generate_series(1, $1::int4)", [Int32(5)]) == 5)
      let updated = try await pool.query("UPDATE values_tags SET n = n + 1 WHERE n > $1", [Int32(2)])
      #expect(updated.affectedRows == 3)
      #expect(updated.commandTag == "UPDATE 3")
      #expect(updated.isEmpty)
      #expect(try await pool.execute("DELETE FROM values_tags") == 5)
    }
  }
}
