import Foundation
import XCTest
@testable import Records

final class RoundTripTests: XCTestCase {
  func sampleExamples(_ n: Int, seed: UInt64 = 1) -> [Example] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { i in
      Example(["id": .int64List([Int64(i)]), "score": randomFeature(.float, rng: &rng),
               "tags": randomFeature(.bytes, rng: &rng), "ints": randomFeature(.int64, rng: &rng)])
    }
  }

  func testWriteThenReadReturnsTheSameExamplesInEveryCompression() throws {
    let dir = ScratchDirectory()
    let examples = sampleExamples(300)
    for compression in [Compression.none, .gzip, .zlib, .zstd] {
      let path = dir.file("data-\(compression).tfrecord")
      let w = try TFRecordWriter(path: path, compression: compression)
      for e in examples { try w.write(e.serialized()) }
      try w.close()
      XCTAssertEqual(try TFRecordReader(path: path).compression, compression, "detected")
      let back = try readAll(path).map { try Example(serialized: $0) }
      XCTAssertEqual(back, examples, "\(compression)")
      if compression == .gzip || compression == .zlib {
        XCTAssertEqual(try readAll(path, inflater: .zlib), try readAll(path, inflater: .isal), "both inflaters agree")
      }
    }
  }

  func testGzipFilesFromOurWriterAreOrdinaryGzipStreams() throws {
    // What TensorFlow needs to read them: `gzip -dc` of our file is the uncompressed framing.
    let dir = ScratchDirectory()
    let examples = sampleExamples(50)
    let plain = dir.file("a.tfrecord"), gz = dir.file("a.tfrecord.gz")
    for (path, c) in [(plain, Compression.none), (gz, .gzip)] {
      let w = try TFRecordWriter(path: path, compression: c)
      for e in examples { try w.write(e.serialized()) }
      try w.close()
    }
    let gunzip = Process()
    gunzip.executableURL = URL(fileURLWithPath: "/bin/sh")
    gunzip.arguments = ["-c", "gzip -dc '\(gz)' > '\(dir.file("b.tfrecord"))'"]
    try gunzip.run()
    gunzip.waitUntilExit()
    XCTAssertEqual(gunzip.terminationStatus, 0)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir.file("b.tfrecord"))), try Data(contentsOf: URL(fileURLWithPath: plain)))
  }

  func testConcatenatedGzipMembersReadAsOneStream() throws {
    let dir = ScratchDirectory()
    let examples = sampleExamples(40)
    var all = Data()
    for part in 0..<2 {
      let path = dir.file("p\(part).gz")
      let w = try TFRecordWriter(path: path, compression: .gzip)
      for e in examples[(part * 20)..<(part * 20 + 20)] { try w.write(e.serialized()) }
      try w.close()
      all.append(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    try all.write(to: URL(fileURLWithPath: dir.file("both.gz")))
    for inflater in [Inflater.isal, .zlib] {
      XCTAssertEqual(try readAll(dir.file("both.gz"), inflater: inflater).map { try Example(serialized: $0) }, examples)
    }
  }

  func testAWriterLeavesNoFileUnderItsNameUntilClosedAndNothingWhenAbandoned() throws {
    let dir = ScratchDirectory()
    let path = dir.file("out.tfrecord")
    let w = try TFRecordWriter(path: path, compression: .gzip)
    try w.write([1, 2, 3])
    XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    XCTAssertTrue(FileManager.default.fileExists(atPath: AtomicFileSink.temporaryPath(for: path)))
    try w.close()
    XCTAssertTrue(FileManager.default.fileExists(atPath: path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: AtomicFileSink.temporaryPath(for: path)))

    let other = dir.file("abandoned.tfrecord")
    let a = try TFRecordWriter(path: other)
    try a.write([9])
    a.abandon()
    XCTAssertFalse(FileManager.default.fileExists(atPath: other))
    XCTAssertFalse(FileManager.default.fileExists(atPath: AtomicFileSink.temporaryPath(for: other)))
  }

  func testShardedWriterRollsByRecordCountAndByBytes() throws {
    let dir = ScratchDirectory()
    let payloads = sampleExamples(95).map { $0.serialized() }
    let byCount = ShardedTFRecordWriter(directory: dir.path, prefix: "count", compression: .gzip, maxRecords: 20)
    for p in payloads { try byCount.write(p) }
    let shards = try byCount.close()
    XCTAssertEqual(shards.map(\.records), [20, 20, 20, 20, 15])
    XCTAssertEqual(shards.map { $0.path.hasSuffix(".tfrecord.gz") }, Array(repeating: true, count: 5))
    XCTAssertEqual(try shards.flatMap { try readAll($0.path) }, payloads)

    let bySize = ShardedTFRecordWriter(directory: dir.path, prefix: "size", maxBytes: 4000)
    for p in payloads { try bySize.write(p) }
    let sized = try bySize.close()
    XCTAssertGreaterThan(sized.count, 1)
    for s in sized {
      XCTAssertLessThanOrEqual(s.bytes, 4000 + UInt64(payloads.map(\.count).max()! + 16))
      XCTAssertEqual(UInt64(try Data(contentsOf: URL(fileURLWithPath: s.path)).count), s.bytes)
    }
    XCTAssertEqual(try sized.flatMap { try readAll($0.path) }, payloads)
  }

  func testExamplesSurviveJSONRoundTrips() throws {
    var rng = SplitMix64(seed: 3)
    for _ in 0..<200 {
      var map: [String: Feature] = [:]
      for k in 0..<Int.random(in: 0...6, using: &rng) {
        map["k\(k)"] = Int.random(in: 0..<8, using: &rng) == 0 ? .unset
          : randomFeature(ValueKind.allCases.randomElement(using: &rng)!, rng: &rng)
      }
      let e = Bool.random(using: &rng) ? Example(map) : Example(features: map.isEmpty ? nil : Features(map))
      let text = JSONWriter.serialize(e.canonicalJSON)
      // Protobuf's JSON mapping writes every NaN as "NaN": payload bits cannot survive it.
      XCTAssertEqual(try Example(canonicalJSON: JSONParser.parse(text)), canonicalNaNs(e), text)
    }
  }

  func canonicalNaNs(_ e: Example) -> Example {
    guard let f = e.features else { return e }
    return Example(features: Features(f.feature.mapValues { feature in
      if case .floatList(let v) = feature { return .floatList(v.map { $0.isNaN ? .nan : $0 }) }
      return feature
    }))
  }

  func testStreamingReadUsesABufferBoundedByTheLargestRecord() throws {
    // 20 MB of records through a 64 KiB read size: the reader never holds the file.
    let dir = ScratchDirectory()
    let path = dir.file("big.tfrecord")
    let w = try TFRecordWriter(path: path)
    let payload = [UInt8](repeating: 7, count: 100_000)
    for _ in 0..<200 { try w.write(payload) }
    try w.close()
    var options = ReaderOptions()
    options.readSize = 64 << 10
    let r = try TFRecordReader(path: path, options: options)
    var n = 0
    while let rec = try r.next() { XCTAssertEqual(rec.data.count, 100_000); n += 1 }
    XCTAssertEqual(n, 200)
  }
}

final class InflaterEdgeTests: XCTestCase {
  /// ISA-L may hold decompressed output after consuming the last input byte; reading in small
  /// pieces must still reach the end of a zlib stream rather than report it truncated.
  func testBothInflatersReadCompressedStreamsInSmallPieces() throws {
    let dir = ScratchDirectory()
    var rng = SplitMix64(seed: 21)
    let payloads = (0..<400).map { _ in (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...3, using: &rng) } }
    for compression in [Compression.gzip, .zlib] {
      let path = dir.file("small-\(compression)")
      let w = try TFRecordWriter(path: path, compression: compression)
      for p in payloads { try w.write(p) }
      try w.close()
      for inflater in [Inflater.isal, .zlib] {
        for readSize in [100, 4096] {
          let (source, _, _) = try openByteSource(path: path, compression: compression, inflater: inflater)
          var out: [UInt8] = []
          var buffer = [UInt8](repeating: 0, count: readSize)
          while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            out += buffer[0..<n]
          }
          let reader = TFRecordReader(source: MemorySource(out), path: path)
          var back: [[UInt8]] = []
          while let r = try reader.next() { back.append(Array(r.data)) }
          XCTAssertEqual(back, payloads, "\(compression) \(inflater) reads of \(readSize)")
        }
      }
    }
  }
}

/// Bytes from memory, for tests.
final class MemorySource: ByteSource {
  let bytes: [UInt8]
  var position = 0
  init(_ bytes: [UInt8]) { self.bytes = bytes }
  var fileOffset: UInt64 { UInt64(position) }
  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let n = min(buffer.count, bytes.count - position)
    if n > 0 { bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) } }
    position += n
    return n
  }
}
