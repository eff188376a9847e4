import Foundation
import XCTest
@testable import Features
import Records

/// The ISA-L deflate sink and the segment deflater (Records), as convert uses them.
final class ConvertIsalDeflateTests: XCTestCase {
  func sampleRecords(_ n: Int) -> [[UInt8]] {
    var rng = SplitMix64(seed: 21)
    return (0..<n).map { i in
      var f: [String: Feature] = ["label": .int64List([Int64(i % 2)])]
      for j in 1...26 where Int.random(in: 0..<5, using: &rng) > 0 {
        f["C\(j)"] = .bytesList([Array(String(format: "%08x", UInt32.random(in: 0..<UInt32(64 << j % 20), using: &rng)).utf8)])
      }
      return Example(f).serialized()
    }
  }

  func gunzip(_ path: String) throws -> [UInt8] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "gzip -dc '\(path)'"]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0, "gzip -dc \(path)")
    return Array(data)
  }

  func testIsalSinkOutputReadsBackThroughBothInflatersAndGzip() throws {
    let dir = ScratchDirectory()
    let records = sampleRecords(3000)
    let plain = dir.file("plain.tfrecord")
    let w = try TFRecordWriter(path: plain)
    for r in records { try w.write(r) }
    try w.close()
    let uncompressed = ConvertTest.bytes(plain)
    for level: Int32 in 0...3 {
      for gzip in [true, false] {
        let path = dir.file("isal-\(level)-\(gzip).tfrecord")
        let sink = try makeFileSink(path: path, compression: gzip ? .gzip : .zlib, engine: .isal, level: level)
        // Odd write sizes, so input buffering inside ISA-L is exercised.
        var at = 0
        var step = 1
        try uncompressed.withUnsafeBytes { b in
          while at < b.count {
            let n = min(step, b.count - at)
            try sink.write(UnsafeRawBufferPointer(rebasing: b[at..<at + n]))
            at += n
            step = step * 3 + 1
          }
        }
        try sink.finish()
        let compressed = ConvertTest.bytes(path)
        XCTAssertLessThan(compressed.count, uncompressed.count, "level \(level) compresses")
        XCTAssertEqual(try readRecords(path, .zlib), records, "zlib inflater, level \(level) gzip \(gzip)")
        XCTAssertEqual(try readRecords(path, .isal), records, "ISA-L inflater, level \(level) gzip \(gzip)")
        if gzip { XCTAssertEqual(try gunzip(path), uncompressed, "gzip -dc, level \(level)") }
      }
    }
    XCTAssertThrowsError(try IsalDeflateSink(MemorySink(), gzip: true, level: 4))
  }

  func readRecords(_ path: String, _ inflater: Inflater) throws -> [[UInt8]] {
    let r = try TFRecordReader(path: path, inflater: inflater)
    var out: [[UInt8]] = []
    while let rec = try r.next() { out.append(Array(rec.data)) }
    return out
  }

  func testSegmentsCompressedSeparatelyConcatenateIntoOneValidStream() throws {
    let dir = ScratchDirectory()
    var data: [UInt8] = []
    for r in sampleRecords(2000) { data += r }
    let pieces = [0, 1, 17, 5000, 70_000, data.count].windows()
    for engine in DeflateEngine.allCases {
      for gzip in [true, false] {
        let c = try DeflateSegmentCompressor(engine: engine)
        var stream = DeflateSegmentAssembler.header(gzip: gzip)
        var checksum: UInt32 = gzip ? 0 : 1
        for (a, b) in pieces {
          try data.withUnsafeBytes { d in
            let piece = UnsafeRawBufferPointer(rebasing: d[a..<b])
            try c.compress(piece, appendingTo: &stream)
            let sum = gzip ? DeflateSegmentAssembler.crc32(piece) : DeflateSegmentAssembler.adler32(piece)
            checksum = DeflateSegmentAssembler.combine(gzip: gzip, checksum, sum, lengthOfB: UInt64(b - a))
          }
        }
        stream += DeflateSegmentAssembler.trailer(gzip: gzip, checksum: checksum, length: UInt64(data.count))
        let path = dir.write("seg-\(engine)-\(gzip)", bytes: stream)
        for inflater in [Inflater.zlib, .isal] {
          let (source, _, _) = try openByteSource(path: path, compression: gzip ? .gzip : .zlib, inflater: inflater)
          var back = [UInt8](repeating: 0, count: data.count + 16)
          var n = 0
          try back.withUnsafeMutableBytes { b in
            while true {
              let k = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: b[n...]))
              if k == 0 { break }
              n += k
            }
          }
          XCTAssertEqual(Array(back[0..<n]), data, "\(engine) gzip=\(gzip) \(inflater)")
        }
        if gzip { XCTAssertEqual(try gunzip(path), data) }
      }
    }
  }

  func testLevelsOutsideTheEngineRangeAreRejected() {
    XCTAssertThrowsError(try DeflateSegmentCompressor(engine: .isal, level: 4))
    XCTAssertThrowsError(try DeflateSegmentCompressor(engine: .zlib, level: 10))
    XCTAssertNoThrow(try DeflateSegmentCompressor(engine: .zlib, level: 9))
  }
}

extension Array where Element == Int {
  /// Consecutive pairs: [0, 3, 7] -> [(0, 3), (3, 7)].
  fileprivate func windows() -> [(Int, Int)] { zip(self, dropFirst()).map { ($0, $1) } }
}
