import Foundation
import XCTest
@testable import Records

final class ExampleReaderTests: XCTestCase {
  func writeShards(_ dir: ScratchDirectory, shards: Int, perShard: Int, compression: Compression = .gzip) throws -> [String] {
    try (0..<shards).map { s in
      let path = dir.file("shard-\(s).tfrecord\(compression.fileSuffix)")
      let w = try TFRecordWriter(path: path, compression: compression)
      for i in 0..<perShard {
        let id = s * perShard + i
        try w.write(Example(["id": .int64List([Int64(id)]), "v": .floatList([Float(id) / 2]),
                             "s": .bytesList([Array("row\(id)".utf8)])]).serialized())
      }
      try w.close()
      return path
    }
  }

  func testBatchesComeInFileOrderFromParallelWorkers() throws {
    let dir = ScratchDirectory()
    let paths = try writeShards(dir, shards: 3, perShard: 1000)
    let spec = try ParseSpec([.scalar("id", .int64), .scalar("v", .float), .scalar("s", .bytes)])
    for threads in [1, 2, 4] {
      let reader = ExampleReader(paths: paths, spec: spec, batchSize: 128, threads: threads)
      var ids: [Int64] = []
      while let b = try reader.next() {
        XCTAssertLessThanOrEqual(b.count, 128)
        ids += b.column(0).int64Values
        XCTAssertEqual(b.column(1).floatValues.map { $0 * 2 }, b.column(0).int64Values.map(Float.init))
        XCTAssertEqual(String(decoding: b.column(2).bytes(0), as: UTF8.self), "row\(b.column(0).int64Values[0])")
      }
      XCTAssertEqual(ids, (0..<3000).map(Int64.init), "threads \(threads)")
    }
  }

  func testAnErrorInTheMiddleOfAShardArrivesAfterTheRecordsBeforeIt() throws {
    let dir = ScratchDirectory()
    let good = try writeShards(dir, shards: 1, perShard: 300, compression: .none)[0]
    var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: good)))
    bytes[bytes.count / 2] ^= 0x10
    let bad = dir.file("bad.tfrecord")
    try Data(bytes).write(to: URL(fileURLWithPath: bad))
    let spec = try ParseSpec([.scalar("id", .int64)])
    let reader = ExampleReader(paths: [bad], spec: spec, batchSize: 50, threads: 2)
    var ids: [Int64] = []
    XCTAssertThrowsError(try { while let b = try reader.next() { ids += b.column(0).int64Values } }()) { error in
      let e = error as! RecordsError
      XCTAssertEqual(e.path, bad)
      XCTAssertEqual(e.record, ids.count)
    }
    XCTAssertEqual(ids, (0..<Int64(ids.count)).map { $0 })
    XCTAssertGreaterThan(ids.count, 100)
    XCTAssertNil(try reader.next(), "nothing is handed out after the error")
  }

  /// A record that fails to parse (its CRC is good) stops the stream for good: the framer goes on
  /// to the end of the file, but nothing after the error is handed out.
  func testNothingIsHandedOutAfterAParseError() throws {
    let dir = ScratchDirectory()
    let path = dir.file("parse-error.tfrecord")
    let w = try TFRecordWriter(path: path)
    for i in 0..<400 {
      try w.write(i == 130 ? [0x0A, 0x05, 0x01] : Example(["id": .int64List([Int64(i)])]).serialized())
    }
    try w.close()
    let spec = try ParseSpec([.scalar("id", .int64)])
    let reader = ExampleReader(paths: [path], spec: spec, batchSize: 16, threads: 2)
    var ids: [Int64] = []
    XCTAssertThrowsError(try { while let b = try reader.next() { ids += b.column(0).int64Values } }()) { error in
      XCTAssertEqual((error as? RecordsError)?.record, 130)
    }
    XCTAssertEqual(ids, (0..<128).map { Int64($0) }, "the batches before the bad record's batch")
    Thread.sleep(forTimeInterval: 0.05)  // let the framer finish the file
    XCTAssertNil(try reader.next(), "nothing is handed out after the error")
  }

  func testSkipCorruptContinuesAndReports() throws {
    let spec = try ParseSpec([FeatureSpec("id", .int64)])
    let reader = ExampleReader(paths: [Fixture.path("corrupt_length_bitflip.tfrecord")], spec: spec, batchSize: 16,
                               threads: 2, options: ReaderOptions(skipCorrupt: true))
    var n = 0
    while let b = try reader.next() { n += b.count }
    XCTAssertEqual(n, 49)
    XCTAssertEqual(reader.skipped.records, 1)
  }

  func testAMissingFileIsAnErrorAndStoppingEarlyDoesNotHang() throws {
    let spec = try ParseSpec([FeatureSpec("id", .int64)])
    let reader = ExampleReader(paths: ["/nonexistent/x.tfrecord"], spec: spec)
    XCTAssertThrowsError(try reader.next()) { XCTAssertEqual(($0 as! RecordsError).kind, .io) }
    let dir = ScratchDirectory()
    let paths = try writeShards(dir, shards: 2, perShard: 5000)
    let early = ExampleReader(paths: paths, spec: spec, batchSize: 64, threads: 2)
    _ = try early.next()
    early.shutdown()  // abandons the rest; must return promptly
  }

  func testGlobsExpandSortedAndAPatternWithoutMatchesIsAnError() throws {
    let dir = ScratchDirectory()
    _ = try writeShards(dir, shards: 3, perShard: 1)
    XCTAssertEqual(try expandGlobs([dir.path + "/shard-*.tfrecord.gz"]).map { ($0 as NSString).lastPathComponent },
                   ["shard-0.tfrecord.gz", "shard-1.tfrecord.gz", "shard-2.tfrecord.gz"])
    XCTAssertThrowsError(try expandGlobs([dir.path + "/nothing-*.tfrecord"]))
  }
}
