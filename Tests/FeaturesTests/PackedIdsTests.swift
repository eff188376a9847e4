import XCTest
@testable import Features
import Records

/// `packed_ids`: identity columns read their ids from one packed list per record, cut by a list
/// of lengths, with the same rules (and so the same batch) as one feature per column.
final class PackedIdsTests: XCTestCase {
  static let columns = """
      - {name: a, type: identity, num_buckets: 10}
      - {name: b, type: identity, num_buckets: 5, default_value: 4}
      - {name: c, type: identity, num_buckets: 100}
      - {name: n, type: numeric, dtype: float}
    """
  static let packed = "label: label\npacked_ids: {values: ids, lengths: ids_len, columns: [a, b, c]}\ncolumns:\n" + columns
  static let unpacked = "label: label\ncolumns:\n" + columns

  /// Transforms records (as features) with a config and returns the batch.
  func transform(_ yaml: String, _ records: [[String: Feature]]) throws -> FeatureBatch {
    let t = try Transformer(config: try loadConfig(yaml))
    let parsed = ParsedBatch(spec: t.spec)
    try ExampleParser(spec: t.spec).parse(records.map { Example($0).serialized() }, into: parsed)
    let batch = t.makeBatch()
    try t.transform(parsed, into: batch)
    return batch
  }

  /// One record in both layouts: per column `ids[c]`, and packed in column order.
  func record(label: Int64, _ ids: [[Int64]], n: Float = 0.5) -> (packed: [String: Feature], unpacked: [String: Feature]) {
    var unpacked: [String: Feature] = ["label": .int64List([label]), "n": .floatList([n])]
    for (name, v) in zip(["a", "b", "c"], ids) { unpacked[name] = .int64List(v) }
    let packed: [String: Feature] = ["label": .int64List([label]), "n": .floatList([n]),
                                     "ids": .int64List(ids.flatMap { $0 }), "ids_len": .int64List(ids.map { Int64($0.count) })]
    return (packed, unpacked)
  }

  func testEachColumnGetsItsSegmentWithTheIdentityRules() throws {
    let rows = [
      record(label: 1, [[3], [7, 1], [50]]),      // 7 is outside b's [0, 5): b's default 4
      record(label: 0, [[-1], [], [99, 0, 12]]),  // -1 is missing
      record(label: 1, [[], [], []], n: 2),
      record(label: 0, [[9, 9], [5], [-1, 98]]),  // 5 is just outside b's range: its default 4
    ]
    let packed = try transform(Self.packed, rows.map(\.packed))
    let unpacked = try transform(Self.unpacked, rows.map(\.unpacked))
    XCTAssertEqual(packed.count, 4)
    for slot in 0..<3 {
      XCTAssertEqual(Array(packed.sparse(slot).offsets), Array(unpacked.sparse(slot).offsets), "slot \(slot)")
      XCTAssertEqual(Array(packed.sparse(slot).ids), Array(unpacked.sparse(slot).ids), "slot \(slot)")
    }
    // Spelled out for column b, and the dense column untouched by packing.
    XCTAssertEqual(Array(packed.sparse(1).ids), [4, 1, 4])
    XCTAssertEqual(Array(packed.sparse(1).offsets), [0, 2, 2, 2, 3])
    XCTAssertEqual(Array(packed.dense), [0.5, 0.5, 2, 0.5])
    XCTAssertEqual(Array(packed.labels), [1, 0, 1, 0])
  }

  /// Many records, so the transpose runs over several blocks of records and a partial one:
  /// random lengths (often 0 or 1, sometimes 3), missing ids, and ids that take b's default.
  func testRandomRecordsAcrossSeveralBlocksMatchOneFeaturePerColumn() throws {
    var rng = SplitMix64(seed: 7)
    let buckets: [Int64] = [10, 5, 100]
    var rows: [(packed: [String: Feature], unpacked: [String: Feature])] = []
    for r in 0..<53 {
      let ids = buckets.enumerated().map { c, n -> [Int64] in
        let length = [0, 1, 1, 1, 3][Int(rng.next() % 5)]
        return (0..<length).map { _ in
          switch rng.next() % 8 {
          case 0: return -1
          case 1 where c == 1: return n + Int64(rng.next() % 3)  // b's default
          default: return Int64(rng.next() % UInt64(n))
          }
        }
      }
      rows.append(record(label: Int64(r % 2), ids, n: Float(r)))
    }
    let packed = try transform(Self.packed, rows.map(\.packed))
    let unpacked = try transform(Self.unpacked, rows.map(\.unpacked))
    XCTAssertEqual(packed.count, 53)
    XCTAssertGreaterThan(unpacked.sparse(1).ids.count, 20)
    for slot in 0..<3 {
      XCTAssertEqual(Array(packed.sparse(slot).offsets), Array(unpacked.sparse(slot).offsets), "slot \(slot)")
      XCTAssertEqual(Array(packed.sparse(slot).ids), Array(unpacked.sparse(slot).ids), "slot \(slot)")
    }
  }

  func assertTransformError(_ records: [[String: Feature]], _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try transform(Self.packed, records), file: file, line: line) { error in
      XCTAssertTrue("\(error)".contains(expected), "\(error)", file: file, line: line)
    }
  }

  func testLengthsThatDoNotCoverTheIdsAreErrorsNamingTheRecordColumnAndFeature() {
    let good = record(label: 1, [[1], [2], [3]]).packed
    func with(ids: [Int64], lengths: [Int64]) -> [String: Feature] {
      var r = good
      r["ids"] = .int64List(ids)
      r["ids_len"] = .int64List(lengths)
      return r
    }
    assertTransformError([good, with(ids: [1, 2, 3], lengths: [1, 1, 0])],
                         "record 1: column 'c' (feature 'ids'): has 3 ids, but 'ids_len' accounts for 2")
    assertTransformError([good, good, with(ids: [1, 2], lengths: [1, 5, 0])],
                         "record 2: column 'b' (feature 'ids_len'): says 5 ids, but 'ids' has 1 left")
    assertTransformError([with(ids: [1, 2], lengths: [1, -1, 2])],
                         "record 0: column 'b' (feature 'ids_len'): says -1 ids")
    assertTransformError([good, with(ids: [10, 2, 3], lengths: [1, 1, 1])],
                         "record 1: column 'a' (feature 'ids'): value 10 is outside [0, 10) and the column has no default_value")
    // The lengths are required, one per packed column (the parser's own checks).
    var missing = good
    missing["ids_len"] = nil
    assertTransformError([missing], "ids_len")
    assertTransformError([with(ids: [1, 2], lengths: [1, 1])], "has 2 values but the spec's fixed shape needs 3")
  }

  func assertConfigError(_ yaml: String, key: String, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try loadConfig(yaml), file: file, line: line) { error in
      guard let e = error as? ConfigError else { return XCTFail("\(error)", file: file, line: line) }
      XCTAssertEqual(e.key, key, "\(e)", file: file, line: line)
      XCTAssertTrue(e.message.contains(text), "\(e)", file: file, line: line)
    }
  }

  func testConfigsThatCannotReadPackedIdsAreRefusedNamingTheKey() {
    // (packed_ids, an extra column, the key named, the message)
    let cases: [(String, String, String, String)] = [
      ("{values: ids, lengths: ids_len, columns: [a, z]}", "", "packed_ids.columns[1]", "'z' is not a column of this config"),
      ("{values: ids, lengths: ids_len, columns: [a, n]}", "", "packed_ids.columns[1]",
       "'n' is a numeric column; only identity columns read packed ids"),
      ("{values: ids, lengths: ids_len, columns: [a, b, a]}", "", "packed_ids.columns[2]", "'a' is packed twice"),
      ("{values: ids, lengths: ids, columns: [a]}", "", "packed_ids.lengths", "the lengths need their own feature"),
      ("{values: label, lengths: ids_len, columns: [a]}", "", "packed_ids.values", "feature 'label' is already read by the config"),
      ("{values: n, lengths: ids_len, columns: [a]}", "", "packed_ids.values", "feature 'n' is already read by the config"),
      ("{values: ids, lengths: ids_len, columns: []}", "", "packed_ids.columns", "at least one column is required"),
      ("{values: ids, lengths: ids_len, columns: [a]}", "  - {name: ax, type: crossed, keys: [a, c], hash_bucket_size: 10}",
       "packed_ids.columns", "'a' is a key of crossed column 'ax'"),
      ("{values: ids, lengths: ids_len, columns: [d]}", "  - {name: d, type: identity, num_buckets: 3, source: a}",
       "packed_ids.columns[0]", "cannot also set source"),
      ("{values: ids, lengths: ids_len, colums: [a]}", "", "packed_ids.colums", "did you mean 'columns'"),
    ]
    for (packed, extra, key, message) in cases {
      assertConfigError("label: label\npacked_ids: \(packed)\ncolumns:\n" + Self.columns + "\n" + extra, key: key, contains: message)
    }
  }

  /// `convert --transform --pack-ids` writes the packed layout and a config that reads it back;
  /// packed ids carry no weights, so a weighted id column is refused before any row.
  func testConvertPacksEveryIdColumnAndRefusesWeightedOnes() throws {
    let fitted = try loadConfig(Self.unpacked)
    let transform = try ConvertTransform(config: fitted, configPath: "fitted.yaml", packIds: true)
    XCTAssertEqual(transform.features.map(\.name), ["label", "n", "packed_id_lengths", "packed_ids"])
    XCTAssertEqual(transform.features.first { $0.name == "packed_id_lengths" }?.length, 3)
    XCTAssertEqual(transform.features.first { $0.name == "packed_ids" }?.columns, ["a", "b", "c"])
    let readBack = try transform.materializedConfig()
    XCTAssertEqual(readBack.packedIds, PackedIds(values: "packed_ids", lengths: "packed_id_lengths", columns: ["a", "b", "c"]))
    XCTAssertNoThrow(try Transformer(config: readBack))

    let weighted = try loadConfig(Self.unpacked + "\n  - {name: w, type: identity, num_buckets: 3, weight_feature: ww}\n")
    XCTAssertThrowsError(try ConvertTransform(config: weighted, configPath: "fitted.yaml", packIds: true)) { error in
      XCTAssertTrue("\(error)".contains("fitted.yaml: column 'w': --pack-ids: the column has a weight_feature"), "\(error)")
    }
  }
}
