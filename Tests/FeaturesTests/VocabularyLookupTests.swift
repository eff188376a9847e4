@testable import Features
import Foundation
import Records
import XCTest

/// categorical_column_with_vocabulary_list / _file against TensorFlow.
final class VocabularyLookupTests: XCTestCase {
  /// Checks one golden result list: a null entry is a query TensorFlow dropped as a dense ignore
  /// value, every other entry is the id.
  func check(_ lookup: VocabularyLookup, queries: [String], golden: [JSONValue], _ name: String) {
    XCTAssertEqual(queries.count, golden.count, name)
    for (query, expected) in zip(queries, golden) {
      if expected.isNull {
        XCTAssertTrue(query.utf8.withContiguousStorageIfAvailable { DenseIgnoreValue.drops(UnsafeRawBufferPointer($0)) }!,
                      "\(name): TensorFlow gave no id for \(query.debugDescription), which is not the ignore value")
        continue
      }
      XCTAssertEqual(lookup.id(query), expected.int64, "\(name): \(query.debugDescription)")
    }
  }

  func testVocabularyListLookupsMatchTensorFlowWithOOVBucketsAndDefaultValues() throws {
    let golden = try Fixture.json("vocabulary.json")
    let vocabulary = try golden.required("string_vocab_list") { $0.array?.compactMap(\.string) }
    let queries = try golden.required("queries") { $0.array?.compactMap(\.string) }
    let results = try golden.required("results") { $0 }
    check(try VocabularyLookup(strings: vocabulary, numOOVBuckets: 3), queries: queries,
          golden: try results.required("list_oov3") { $0.array }, "list_oov3")
    check(try VocabularyLookup(strings: vocabulary), queries: queries,
          golden: try results.required("list_default_-1") { $0.array }, "list_default_-1")
    check(try VocabularyLookup(strings: vocabulary, defaultValue: 99), queries: queries,
          golden: try results.required("list_default_99") { $0.array }, "list_default_99")
  }

  func testVocabularyFileLookupsMatchTensorFlow() throws {
    let golden = try Fixture.json("vocabulary.json")
    let vocabulary = try VocabularyLookup.readVocabularyFile(path: Fixture.path("vocab.txt"))
    XCTAssertEqual(vocabulary, ["apple", "banana", "cherry", "日本", "date"])
    let queries = try golden.required("queries") { $0.array?.compactMap(\.string) }
    let results = try golden.required("results") { $0 }
    check(try VocabularyLookup(strings: vocabulary, numOOVBuckets: 5), queries: queries,
          golden: try results.required("file_oov5") { $0.array }, "file_oov5")
    check(try VocabularyLookup(strings: vocabulary), queries: queries,
          golden: try results.required("file_default_-1") { $0.array }, "file_default_-1")
  }

  func testInt64VocabularyHashesOOVKeysAsDecimalStringsLikeTensorFlow() throws {
    let golden = try Fixture.json("vocabulary.json")
    let vocabulary = try golden.required("int_vocab_list") { $0.array?.compactMap(\.int64) }
    let queries = try golden.required("int_queries") { $0.array?.compactMap(\.int64) }
    let expected = try golden.required("int_results_oov4") { $0.array }
    let lookup = try VocabularyLookup(int64s: vocabulary, numOOVBuckets: 4)
    XCTAssertEqual(lookup.keyKind, .int64)
    XCTAssertEqual(queries.count, expected.count)
    for (q, e) in zip(queries, expected) {
      if e.isNull {
        XCTAssertTrue(DenseIgnoreValue.drops(q), "TensorFlow gave no id for \(q), which is not the ignore value")
      } else {
        XCTAssertEqual(lookup.id(q), e.int64, "int64 key \(q)")
      }
    }
  }

  func testAnEmptyStringInTheListHasAnIdWhenItIsNotDroppedFirst() throws {
    // The golden list holds '' at position 4. Dense '' never reaches the table (TensorFlow drops
    // it), but a sparse '' does and finds that position.
    let vocabulary = try Fixture.json("vocabulary.json").required("string_vocab_list") { $0.array?.compactMap(\.string) }
    XCTAssertEqual(vocabulary.firstIndex(of: ""), 4)
    XCTAssertEqual(try VocabularyLookup(strings: vocabulary, numOOVBuckets: 3).id(""), 4)
  }

  func testOOVIdsAreVocabularySizePlusTheFastHashBucket() throws {
    let strings = try VocabularyLookup(strings: ["a", "b", "c"], numOOVBuckets: 7)
    let ints = try VocabularyLookup(int64s: [10, 20], numOOVBuckets: 7)
    XCTAssertEqual(strings.bucketCount, 10)
    XCTAssertEqual(ints.bucketCount, 9)
    var rng = SplitMix64(seed: 0x70CA_B001)
    for _ in 0..<500 {
      let key = String((0..<Int(rng.next() % 40)).map { _ in Character(Unicode.Scalar(UInt8(97 + rng.next() % 26))) })
      guard !["a", "b", "c"].contains(key) else { continue }
      XCTAssertEqual(strings.id(key), 3 + TFHash.hashBucketFast(key, buckets: 7), key)
      let v = Int64(bitPattern: rng.next()) >> Int(rng.next() % 64)
      guard v != 10 && v != 20 else { continue }
      XCTAssertEqual(ints.id(v), 2 + TFHash.hashBucketFast(String(v), buckets: 7), "\(v)")
    }
  }

  func testInvalidVocabulariesAndOOVOptionsThrowNamingTheProblem() {
    func error(_ make: () throws -> VocabularyLookup) -> TFCompatError? {
      do { _ = try make(); return nil } catch { return error as? TFCompatError }
    }
    let dup = error { try VocabularyLookup(strings: ["a", "b", "a"]) }
    XCTAssertEqual(dup?.kind, .invalidVocabulary)
    XCTAssertEqual(dup?.description, #"invalid vocabulary: vocabulary key "a" appears at positions 0 and 2"#)
    XCTAssertEqual(error { try VocabularyLookup(int64s: [5, 6, 5]) }?.description,
                   "invalid vocabulary: vocabulary key 5 appears at positions 0 and 2")
    XCTAssertEqual(error { try VocabularyLookup(strings: []) }?.kind, .invalidVocabulary)
    XCTAssertEqual(error { try VocabularyLookup(strings: ["a"], numOOVBuckets: 2, defaultValue: 0) }?.description,
                   "invalid OOV options: num_oov_buckets (2) and default_value (0) are mutually exclusive")
    XCTAssertEqual(error { try VocabularyLookup(int64s: [1], numOOVBuckets: -1) }?.kind, .invalidOOVOptions)
    XCTAssertNil(error { try VocabularyLookup(strings: ["a"], numOOVBuckets: 2, defaultValue: -1) })
  }

  func testManyKeysAreAllFoundAtTheirPositions() throws {
    // Enough keys to fill many probe chains, including keys that share long prefixes.
    let keys = (0..<5000).map { "criteo-category-\($0 * 7919)" } + ["", " ", "日本"]
    let lookup = try VocabularyLookup(strings: keys)
    XCTAssertEqual(lookup.vocabularySize, keys.count)
    for (i, key) in keys.enumerated() { XCTAssertEqual(lookup.id(key), Int64(i)) }
    XCTAssertEqual(lookup.id("criteo-category-1"), -1)
  }

  func testVocabularyFileReadsOnlyTheFirstVocabularySizeLines() throws {
    let path = Fixture.path("vocab.txt")
    XCTAssertEqual(try VocabularyLookup.readVocabularyFile(path: path, vocabularySize: 3), ["apple", "banana", "cherry"])
    XCTAssertThrowsError(try VocabularyLookup.readVocabularyFile(path: path, vocabularySize: 6)) {
      XCTAssertEqual(($0 as? TFCompatError)?.description,
                     "vocabulary file: \(path): vocabulary_size is 6 but the file has only 5 lines")
    }
    XCTAssertThrowsError(try VocabularyLookup.readVocabularyFile(path: path, vocabularySize: 0))
  }

  func testVocabularyFileLinesDropATrailingCarriageReturnAndKeepEverythingElse() throws {
    let dir = ScratchDirectory()
    let path = dir.file("v.txt")
    // CRLF, an empty line, a line of spaces, and a last line with no newline.
    try Data("a\r\nb\n\n  \nlast".utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertEqual(try VocabularyLookup.readVocabularyFile(path: path), ["a", "b", "", "  ", "last"])
    try Data("x\ny\n".utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertEqual(try VocabularyLookup.readVocabularyFile(path: path), ["x", "y"], "a final newline adds no empty line")
    try Data([0x61, 0x0a, 0xff, 0x0a]).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsError(try VocabularyLookup.readVocabularyFile(path: path)) {
      XCTAssertEqual(($0 as? TFCompatError)?.description, "vocabulary file: \(path): line 2 is not valid UTF-8")
    }
    XCTAssertThrowsError(try VocabularyLookup.readVocabularyFile(path: dir.file("missing.txt"))) {
      XCTAssertEqual(($0 as? TFCompatError)?.kind, .vocabularyFile)
      XCTAssertTrue(($0 as? TFCompatError)?.message.hasPrefix(dir.file("missing.txt")) ?? false)
    }
  }

  /// The table keeps the first 16 bytes of each key in its slot and the rest in an arena: keys
  /// around that boundary, keys sharing a 16-byte prefix, equal lengths with different bytes, and
  /// thousands of keys (long probe chains) must all find their own index and nothing else.
  func testLookupsAroundTheInlinePrefixLengthAndManyKeys() throws {
    var keys = (0...40).map { String(repeating: "k", count: $0) }  // "" … 40 × "k"
    let prefix = String(repeating: "p", count: 16)
    keys += ["\(prefix)a", "\(prefix)b", "\(prefix)aa", "\(prefix)ab", "éé", "\u{0}x", "x\u{0}"]
    keys += (0..<5000).map { String(format: "%08x", $0 &* 2_654_435_761 & 0xffff_ffff) }
    let vocab = try VocabularyLookup(strings: keys, numOOVBuckets: 3)
    for (i, k) in keys.enumerated() { XCTAssertEqual(vocab.id(k), Int64(i), "key \(k.debugDescription)") }
    for miss in ["\(prefix)c", "\(prefix)", String(repeating: "k", count: 41), "kK", "\(prefix)ba", "x", "\u{0}", "zzzzzzzz"] {
      let id = vocab.id(miss)
      XCTAssertTrue(id >= Int64(keys.count) && id < Int64(keys.count + 3), "\(miss.debugDescription) is OOV, got \(id)")
      XCTAssertEqual(id, Int64(keys.count) + Int64(bitPattern: FarmHash.fingerprint64(Array(miss.utf8)) % 3))
    }
    XCTAssertThrowsError(try VocabularyLookup(strings: ["\(prefix)xyz", "a", "\(prefix)xyz"])) {
      XCTAssertEqual(($0 as? TFCompatError)?.kind, .invalidVocabulary)
    }
  }

  /// The probe compares a key with a slot only after their hashes and lengths agree, so the
  /// compare itself (two overlapping loads per side for 4...16 bytes) is checked directly: for
  /// every length, the slot's own key is equal, and a key differing in any one of its first 16
  /// bytes is not.
  func testASlotsPrefixCompareSeesEveryByteOfEveryLength() throws {
    for n in 1...24 {
      let key = (0..<n).map { UInt8(97 + $0 % 26) }
      let table = try ByteKeyTable.build([key]).get()
      let slot = (0...table.mask).map { table.slots + $0 }.first { $0.pointee.index == 0 }!
      key.withUnsafeBytes { XCTAssertTrue(table.prefixEqual(slot, $0.baseAddress!, n), "length \(n)") }
      for j in 0..<min(n, 16) {
        var other = key
        other[j] ^= 0x20
        other.withUnsafeBytes { XCTAssertFalse(table.prefixEqual(slot, $0.baseAddress!, n), "length \(n), byte \(j)") }
      }
    }
  }

  /// The table hashes a key of up to 16 bytes from two (overlapping) loads: every byte of every
  /// length must count, so keys that differ in one byte, at any position, are told apart.
  func testKeysThatDifferInOneByteAtAnyPositionAreToldApart() throws {
    var keys: [String] = []
    for n in 1...20 {
      let base = (0..<n).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) }
      keys.append(String(base))
      for j in 0..<n {
        var k = base
        k[j] = "Z"
        keys.append(String(k))
      }
    }
    let vocab = try VocabularyLookup(strings: keys, numOOVBuckets: 5)
    for (i, k) in keys.enumerated() { XCTAssertEqual(vocab.id(k), Int64(i), "key \(k.debugDescription)") }
    for n in 1...20 {
      for j in 0..<n {
        var miss = (0..<n).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) }
        miss[j] = "Y"
        let m = String(miss)
        XCTAssertEqual(vocab.id(m), Int64(keys.count) + Int64(bitPattern: FarmHash.fingerprint64(Array(m.utf8)) % 5), m)
      }
    }
  }
}
