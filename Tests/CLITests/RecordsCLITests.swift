import Foundation
import Records
import XCTest

final class RecordsCLITests: XCTestCase {
  func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

  func parsedLines(_ s: String) throws -> [JSONValue] { try lines(s).map { try JSONParser.parse($0) } }

  func testCatPrintsOneCanonicalJSONObjectPerRecordForEveryCompression() throws {
    let golden = try parsedLines(String(contentsOfFile: CLI.fixture("examples.message_to_dict.jsonl"), encoding: .utf8))
    for file in ["examples_none.tfrecord", "examples_gzip.tfrecord", "examples_zlib.tfrecord"] {
      let r = try CLI.run(["records", "cat", CLI.fixture(file)])
      XCTAssertEqual(r.status, 0, r.stderr)
      let ours = try parsedLines(r.stdout)
      XCTAssertEqual(ours.count, 50)
      for (a, b) in zip(ours, golden) { XCTAssertTrue(sameJSON(a, b), "\(file)") }
    }
    let seq = try CLI.run(["records", "cat", "--sequence", CLI.fixture("sequence_examples_none.tfrecord")])
    XCTAssertEqual(seq.status, 0)
    XCTAssertEqual(lines(seq.stdout).count, 30)
  }

  func testWriteReadsWhatCatPrintsAndTheRoundTripIsExact() throws {
    let dir = ScratchDirectory()
    let original = try CLI.run(["records", "cat", CLI.fixture("examples_none.tfrecord")])
    for compression in ["none", "gzip", "zlib", "zstd"] {
      let out = dir.file("copy-\(compression).tfrecord")
      let w = try CLI.run(["records", "write", "--output", out, "--compression", compression], stdin: Data(original.stdout.utf8))
      XCTAssertEqual(w.status, 0, w.stderr)
      let again = try CLI.run(["records", "cat", out])
      XCTAssertEqual(again.stdout, original.stdout, compression)
    }
    let seqOriginal = try CLI.run(["records", "cat", "--sequence", CLI.fixture("sequence_examples_none.tfrecord")])
    let seqOut = dir.file("seq.tfrecord")
    XCTAssertEqual(try CLI.run(["records", "write", "--sequence", "-o", seqOut], stdin: Data(seqOriginal.stdout.utf8)).status, 0)
    XCTAssertEqual(try CLI.run(["records", "cat", "--sequence", seqOut]).stdout, seqOriginal.stdout)
  }

  func testWriteRejectsBadLinesNamingTheLineAndLeavesNoOutput() throws {
    let dir = ScratchDirectory()
    let out = dir.file("bad.tfrecord")
    let input = #"{"features": {"feature": {"a": {"int64_list": {"value": ["1"]}}}}}"# + "\n" +
      #"{"features": {"feature": {"a": {"int64_list": {"value": ["x"]}}}}}"# + "\n"
    let r = try CLI.run(["records", "write", "-o", out], stdin: Data(input.utf8))
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.stderr.contains("line 2"), r.stderr)
    XCTAssertTrue(r.stderr.contains("features.feature.a.int64_list.value[0]"), r.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    let syntax = try CLI.run(["records", "write", "-o", out], stdin: Data("{\"features\": [\n".utf8))
    XCTAssertNotEqual(syntax.status, 0)
    XCTAssertTrue(syntax.stderr.contains("line 1"), syntax.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
  }

  func testCorruptFilesExitNonZeroWithFileRecordAndOffsetAfterPrintingGoodRecords() throws {
    let r = try CLI.run(["records", "cat", CLI.fixture("corrupt_data_bitflip.tfrecord")])
    XCTAssertEqual(r.status, 1)
    XCTAssertEqual(lines(r.stdout).count, 10)
    XCTAssertTrue(r.stderr.contains("corrupt_data_bitflip.tfrecord: record 10 at byte offset 163507"), r.stderr)
    let trailing = try CLI.run(["records", "cat", CLI.fixture("trailing_garbage.tfrecord")])
    XCTAssertEqual(trailing.status, 1)
    XCTAssertTrue(trailing.stderr.contains("record 50"), trailing.stderr)
  }

  func testSkipCorruptReportsWhatItSkippedOnStandardError() throws {
    let r = try CLI.run(["records", "cat", "--skip-corrupt", CLI.fixture("corrupt_length_bitflip.tfrecord")])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertEqual(lines(r.stdout).count, 49)
    XCTAssertTrue(r.stderr.contains("skipped 297 bytes (1 record) at byte offset 163507, record 10"), r.stderr)
    XCTAssertTrue(r.stderr.contains("resynchronised"), r.stderr)
  }

  func testStatReportsRecordsBytesAndPerFeatureCounts() throws {
    let r = try CLI.run(["records", "stat", "--json", CLI.fixture("examples_gzip.tfrecord")])
    XCTAssertEqual(r.status, 0, r.stderr)
    let j = try JSONParser.parse(r.stdout)
    XCTAssertEqual(j["records"], .number("50"))
    XCTAssertEqual(j["payload_bytes"], .number("211019"))
    let longInts = j["features"]!["long_ints"]!
    XCTAssertEqual(longInts["kind"], .string("int64_list"))
    XCTAssertEqual(longInts["records"], .number("1"))
    XCTAssertEqual(longInts["max_values"], .number("10000"))
    XCTAssertEqual(j["features"]!["opt_int"]!["records"], .number("36"))
    let table = try CLI.run(["records", "stat", CLI.fixture("examples_none.tfrecord")])
    XCTAssertTrue(table.stdout.contains("records: 50"))
    XCTAssertTrue(table.stdout.contains("long_ints"))
  }

  func testMissingFilesAndBadOptionsAreErrors() throws {
    let missing = try CLI.run(["records", "cat", "/nonexistent/file.tfrecord"])
    XCTAssertEqual(missing.status, 1)
    XCTAssertTrue(missing.stderr.contains("/nonexistent/file.tfrecord: cannot open"), missing.stderr)
    let badOption = try CLI.run(["records", "cat", "--compression", "lz4", CLI.fixture("examples_none.tfrecord")])
    XCTAssertNotEqual(badOption.status, 0)
  }

  func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.object(let x), .object(let y)):
      let dy = Dictionary(y, uniquingKeysWith: { $1 })
      return x.count == y.count && x.allSatisfy { k, v in dy[k].map { sameJSON(v, $0) } ?? false }
    case (.array(let x), .array(let y)):
      return x.count == y.count && zip(x, y).allSatisfy(sameJSON)
    default:
      return a == b
    }
  }
}
