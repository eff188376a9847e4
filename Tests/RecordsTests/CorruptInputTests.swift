import XCTest
@testable import Records

/// Every corruption case TensorFlow was measured on (../shared/compat/corrupt.expected.json), and
/// what we do instead of its silent cases.
final class CorruptInputTests: XCTestCase {
  /// Reads until the first error; returns the records before it and the error.
  func readUntilError(_ name: String, options: ReaderOptions = ReaderOptions()) -> (Int, RecordsError?) {
    var count = 0
    do {
      let r = try TFRecordReader(path: Fixture.path(name), options: options)
      while try r.next() != nil { count += 1 }
      return (count, nil)
    } catch {
      return (count, error as? RecordsError)
    }
  }

  func testCorruptRecordsFailWhereTensorFlowFailsNamingFileRecordAndOffset() throws {
    let golden = try Fixture.json("corrupt.expected.json")["files"]!
    let cases: [(String, RecordsError.Kind, UInt64)] = [
      ("corrupt_data_bitflip.tfrecord", .corruptData, 163_507),
      ("corrupt_data_crc_bitflip.tfrecord", .corruptData, 163_507),
      ("corrupt_length_bitflip.tfrecord", .corruptLength, 163_507),
      ("corrupt_length_crc_bitflip.tfrecord", .corruptLength, 163_507),
      ("truncated_tail.tfrecord", .truncated, 211_801),
      ("truncated_footer_only.tfrecord", .truncated, 211_801),
      ("gzip_truncated.tfrecord.gz", .decompression, 2413),
    ]
    for (name, kind, offset) in cases {
      let (count, error) = readUntilError(name)
      let tf = golden[name]!["tfrecorddataset"]!
      XCTAssertEqual(count, tf["records_before_error"]!.intValue!, name)
      XCTAssertEqual(error?.kind, kind, name)
      XCTAssertEqual(error?.record, count, name)
      XCTAssertEqual(error?.offset, offset, name)
      XCTAssertTrue(error?.description.contains(name) == true, "the message names the file: \(error as Any)")
      XCTAssertTrue(error?.description.contains("record \(count)") == true, "the message names the record")
      XCTAssertTrue(error?.description.contains("byte offset \(offset)") == true, "the message names the offset")
    }
  }

  func testATruncatedHeaderAndTrailingGarbageAreErrorsWhereTensorFlowIsSilent() throws {
    let golden = try Fixture.json("corrupt.expected.json")["files"]!
    for (name, records, left) in [("truncated_in_header.tfrecord", 49, 6), ("trailing_garbage.tfrecord", 50, 3)] {
      XCTAssertNil(golden[name]!["tfrecorddataset"]!["error"].flatMap { $0 == .null ? nil : $0 }, "TF is silent on \(name)")
      let (count, error) = readUntilError(name)
      XCTAssertEqual(count, records, name)
      XCTAssertEqual(error?.kind, .trailingBytes, name)
      XCTAssertTrue(error?.message.contains("ends \(left) bytes into a record header") == true, "\(error as Any)")
    }
  }

  func testACorruptGzipStreamIsAnErrorAfterTheRecordsThatPassTheirChecksums() {
    // TF reports `inflate() failed ... incorrect data check` before any record because it
    // inflates 256 KiB at a time; we hand out the records whose CRCs verify first.
    let (count, error) = readUntilError("gzip_bitflip.tfrecord.gz")
    XCTAssertEqual(count, 7)
    XCTAssertNotNil(error)
    XCTAssertEqual(error?.record, 7)
  }

  func testSkipCorruptSkipsOneBadRecordAndReportsIt() {
    for name in ["corrupt_data_bitflip.tfrecord", "corrupt_data_crc_bitflip.tfrecord"] {
      let r = try! TFRecordReader(path: Fixture.path(name), options: ReaderOptions(skipCorrupt: true))
      var indices: [Int] = []
      while let rec = try! r.next() { indices.append(rec.index) }
      XCTAssertEqual(indices, Array(0..<10) + Array(11..<50), name)
      XCTAssertEqual(r.skipped.records, 1)
      XCTAssertEqual(r.skipped.events.first?.offset, 163_507)
      XCTAssertEqual(r.skipped.events.first?.recordIndex, 10)
      XCTAssertEqual(r.skipped.bytes, 297)
    }
  }

  func testSkipCorruptResynchronisesAfterACorruptLengthWhichTensorFlowCannot() throws {
    let golden = try Fixture.json("corrupt.expected.json")["files"]!
    for name in ["corrupt_length_bitflip.tfrecord", "corrupt_length_crc_bitflip.tfrecord"] {
      XCTAssertEqual(golden[name]!["tfrecorddataset_ignore_errors"]!["records_yielded"]!.intValue, 10, "TF stops at the bad record")
      let payloads = try readAll(Fixture.path(name), options: ReaderOptions(skipCorrupt: true))
      let clean = try readAll(Fixture.path("examples_none.tfrecord"))
      XCTAssertEqual(payloads.count, 49, name)
      XCTAssertEqual(payloads, Array(clean[0..<10]) + Array(clean[11...]), name)
    }
  }

  func testSkipCorruptReportsTruncatedTailsAndTrailingBytes() throws {
    for (name, records, bytes) in [("truncated_tail.tfrecord", 49, 13), ("truncated_footer_only.tfrecord", 49, 16),
                                   ("truncated_in_header.tfrecord", 49, 6), ("trailing_garbage.tfrecord", 50, 3)] {
      let r = try TFRecordReader(path: Fixture.path(name), options: ReaderOptions(skipCorrupt: true))
      var n = 0
      while try r.next() != nil { n += 1 }
      XCTAssertEqual(n, records, name)
      XCTAssertEqual(r.skipped.bytes, UInt64(bytes), name)
    }
  }

  func testSkipCorruptOnACorruptGzipStreamKeepsEveryRecordThatChecksAndReportsTheRest() throws {
    let r = try TFRecordReader(path: Fixture.path("gzip_bitflip.tfrecord.gz"), options: ReaderOptions(skipCorrupt: true))
    var n = 0
    while try r.next() != nil { n += 1 }
    XCTAssertEqual(n, 49)
    XCTAssertEqual(r.skipped.records, 1)
    XCTAssertTrue(r.skipped.events.contains { $0.reason.contains("incorrect data check") }, "\(r.skipped.events)")
    let t = try TFRecordReader(path: Fixture.path("gzip_truncated.tfrecord.gz"), options: ReaderOptions(skipCorrupt: true))
    n = 0
    while try t.next() != nil { n += 1 }
    XCTAssertEqual(n, 7)
    XCTAssertTrue(t.skipped.events.contains { $0.reason.contains("ends before its end marker") })
  }

  func testAFileThatIsNotTFRecordSaysSo() throws {
    let dir = ScratchDirectory()
    let path = dir.file("notes.txt")
    try "label,feature\n1,2\n".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try readAll(path)) { error in
      let e = error as! RecordsError
      XCTAssertEqual(e.kind, .corruptLength)
      XCTAssertEqual(e.record, 0)
      XCTAssertTrue(e.message.contains("is this a TFRecord file?"))
    }
    XCTAssertThrowsError(try readAll(dir.file("missing.tfrecord"))) { error in
      XCTAssertEqual((error as! RecordsError).kind, .io)
    }
  }

  func testAnEmptyFileHasNoRecords() throws {
    let dir = ScratchDirectory()
    FileManager.default.createFile(atPath: dir.file("empty"), contents: Data())
    XCTAssertEqual(try readAll(dir.file("empty")).count, 0)
  }
}
