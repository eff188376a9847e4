import Foundation
import XCTest
@testable import Features
import Records

final class ConvertShardingTests: XCTestCase {
  /// A small generated Criteo-layout file (synthetic).
  func synthetic(_ dir: ScratchDirectory, rows: Int = 2000, seed: UInt64 = 5) throws -> String {
    let path = dir.file("synth-\(rows)-\(seed).tsv")
    _ = try CriteoSynth(seed: seed).generate(rows: rows, output: path, threads: 2)
    return path
  }

  func label(_ e: Example, _ name: String) -> [UInt8]? {
    if case .bytesList(let v)? = e.features?.feature[name] { return v.first }
    return nil
  }

  func testShardsNKeepsRowOrderAcrossEquallySizedShards() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 2003)
    let out = dir.file("out")
    let r = try ConvertTest.run([input], .criteo, into: out, chunkBytes: 8 << 10) { $0.sharding = .shards(7) }
    XCTAssertTrue(r.countingPass)
    let counts = r.manifest.shards.map(\.records)
    XCTAssertEqual(counts.count, 7)
    XCTAssertEqual(counts.reduce(0, +), 2003)
    XCTAssertLessThanOrEqual(counts.max()! - counts.min()!, 1, "\(counts)")
    let back = try ConvertTest.text(try ConvertTest.examples(out), DelimitedExampleFormatter(schema: .criteo, csv: false))
    XCTAssertEqual(back, try String(contentsOfFile: input, encoding: .utf8), "shard order is input order")
  }

  func testMoreShardsThanRowsGivesEmptyButValidShards() throws {
    let dir = ScratchDirectory()
    let input = dir.write("few.tsv", "1\t\t\t\t\t\t\t\t\t\t\t\t\t\tab\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\n")
    for compression in [Compression.gzip, .zlib, .zstd, .none] {
      let out = dir.file("out-\(compression)")
      let r = try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(3); $0.compression = compression }
      XCTAssertEqual(r.manifest.shards.map(\.records), [1, 0, 0])
      XCTAssertEqual(try ConvertTest.examples(out).count, 1, "\(compression)")
    }
  }

  func testShardKeyPutsEveryRowOfAKeyInOneShardInInputOrder() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 3000)
    let out = dir.file("out")
    let r = try ConvertTest.run([input], .criteo, into: out, chunkBytes: 8 << 10) {
      $0.sharding = .key(column: "C6", shards: 4)
    }
    XCTAssertEqual(r.manifest.records, 3000)
    var shardOfKey: [[UInt8]: Int] = [:]
    var rowsPerShard: [[Example]] = []
    for (i, path) in try ConvertTest.shardPaths(out).enumerated() {
      let reader = try TFRecordReader(path: path)
      var examples: [Example] = []
      while let rec = try reader.next() { examples.append(try Example(serialized: rec.data)) }
      rowsPerShard.append(examples)
      for e in examples {
        let key = label(e, "C6") ?? []
        if let s = shardOfKey[key] { XCTAssertEqual(s, i, "key \(String(decoding: key, as: UTF8.self)) in two shards") }
        shardOfKey[key] = i
      }
    }
    XCTAssertGreaterThan(Set(shardOfKey.values).count, 1, "keys spread over shards")
    // Within a shard, rows keep their input order: compare with the input filtered by shard.
    let formatter = DelimitedExampleFormatter(schema: .criteo, csv: false)
    let inputLines = try ConvertTest.lines(input)
    var expected = Array(repeating: [String](), count: 4)
    for line in inputLines {
      let key = Array(line.split(separator: "\t", omittingEmptySubsequences: false)[19].utf8)
      expected[shardOfKey[key]!].append(line)
    }
    for s in 0..<4 {
      XCTAssertEqual(try ConvertTest.text(rowsPerShard[s], formatter), expected[s].map { $0 + "\n" }.joined(), "shard \(s)")
    }
  }

  func testShardSizeStartsANewShardBeforeTheLimitIsPassed() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 2000)
    let out = dir.file("out")
    let limit: UInt64 = 150_000
    let r = try ConvertTest.run([input], .criteo, into: out, chunkBytes: 16 << 10) { $0.sharding = .maxBytes(limit) }
    XCTAssertGreaterThan(r.manifest.shards.count, 3)
    for s in r.manifest.shards { XCTAssertLessThanOrEqual(s.tfrecordBytes, limit) }
    XCTAssertEqual(r.manifest.records, 2000)
  }

  func testSameInputGivesByteIdenticalShardsWhateverTheThreadCount() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 2500)
    var outputs: [[String: Data]] = []
    for (i, threads) in [1, 3, 1, 4].enumerated() {
      let out = dir.file("run\(i)")
      try ConvertTest.run([input], .criteo, into: out, chunkBytes: 8 << 10, threads: threads) { $0.sharding = .shards(3) }
      outputs.append(try ConvertTest.files(out))
    }
    XCTAssertEqual(outputs[0].keys.sorted(), ["MANIFEST.json", "part-00000.tfrecord.gz", "part-00001.tfrecord.gz",
                                              "part-00002.tfrecord.gz", "rejects.tsv"])
    for o in outputs.dropFirst() { XCTAssertEqual(o, outputs[0]) }
    for sharding in [Sharding.key(column: "C9", shards: 3), .maxBytes(100_000)] {
      let a = dir.file("a-\(sharding)"), b = dir.file("b-\(sharding)")
      try ConvertTest.run([input], .criteo, into: a, chunkBytes: 8 << 10, threads: 1) { $0.sharding = sharding }
      try ConvertTest.run([input], .criteo, into: b, chunkBytes: 8 << 10, threads: 3) { $0.sharding = sharding }
      XCTAssertEqual(try ConvertTest.files(a), try ConvertTest.files(b), "\(sharding)")
    }
  }

  func testEveryOutputCompressionReadsBackToTheSameRecords() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 1500)
    let plain = dir.file("none")
    try ConvertTest.run([input], .criteo, into: plain) { $0.sharding = .shards(2); $0.compression = .none }
    let reference = try ConvertTest.payloads(plain)
    let variants: [(Compression, DeflateEngine, Int32?)] = [
      (.gzip, .isal, 0), (.gzip, .isal, 1), (.gzip, .isal, 2), (.gzip, .isal, 3), (.gzip, .zlib, 6), (.gzip, .zlib, 1),
      (.zlib, .isal, 1), (.zlib, .zlib, 9), (.zstd, .isal, 3),
    ]
    for (c, engine, level) in variants {
      let out = dir.file("\(c)-\(engine)-\(level ?? -1)")
      try ConvertTest.run([input], .criteo, into: out) {
        $0.sharding = .shards(2); $0.compression = c; $0.engine = engine; $0.level = level
      }
      for path in try ConvertTest.shardPaths(out) {
        XCTAssertEqual(try TFRecordReader(path: path).compression, c)
      }
      XCTAssertEqual(try ConvertTest.payloads(out), reference, "\(c) \(engine) \(level ?? -1)")
      if c == .gzip || c == .zlib {
        for inflater in [Inflater.zlib, .isal] {
          var n = 0
          for path in try ConvertTest.shardPaths(out) {
            let r = try TFRecordReader(path: path, inflater: inflater)
            while try r.next() != nil { n += 1 }
          }
          XCTAssertEqual(n, 1500, "\(inflater) inflater")
        }
      }
    }
    // The gzip shards are ordinary gzip streams: `gzip -dc` gives the uncompressed shard.
    let gz = dir.file("gzip-isal-1")
    for (i, path) in try ConvertTest.shardPaths(gz).enumerated() {
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/bin/sh")
      p.arguments = ["-c", "gzip -dc '\(path)' | cmp - '\(plain)/part-0000\(i).tfrecord'"]
      try p.run()
      p.waitUntilExit()
      XCTAssertEqual(p.terminationStatus, 0, "gzip -dc \(path)")
    }
  }

  func testGzipAndZstdInputsAreReadDirectly() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 1200)
    let text = ConvertTest.bytes(input)
    for (compression, suffix) in [(Compression.gzip, "gz"), (.zstd, "zst"), (.zlib, "zz")] {
      let packed = dir.file("input.tsv.\(suffix)")
      let sink = try makeFileSink(path: packed, compression: compression)
      try text.withUnsafeBytes { try sink.write($0) }
      try sink.finish()
      let out = dir.file("out-\(suffix)")
      let r = try ConvertTest.run([packed], .criteo, into: out, chunkBytes: 8 << 10)
      XCTAssertEqual(r.manifest.inputs[0].compression, compression)
      XCTAssertEqual(r.manifest.records, 1200)
      let back = try ConvertTest.text(try ConvertTest.examples(out), DelimitedExampleFormatter(schema: .criteo, csv: false))
      XCTAssertEqual(Array(back.utf8), text, suffix)
    }
  }

  func testEncoderSeamAcceptsAReplacementEncoder() throws {
    // What a fitted transform does: replace the encode step; here, keep only the label and a
    // bucketed I1, so the rows written are the transform's, not the raw values.
    struct Bucketed: RowEncoder {
      let label: Int, i1: Int
      func encode(_ row: TypedRow, into output: ByteAccumulator) throws(RowRejection) {
        var w = ExampleWireWriter(output: output)
        w.begin()
        let bucket: Int64 = row.isPresent(i1) ? min(row.int64Values(i1)[0] / 10, 9) : -1
        w.feature(name: "I1_bucket", .int64List([bucket]))
        w.feature(name: "label", .int64List(Array(row.int64Values(label))))
        w.end()
      }
    }
    let dir = ScratchDirectory()
    let input = dir.write("in.tsv", "1\t25" + String(repeating: "\t", count: 38) + "\n0" + String(repeating: "\t", count: 39) + "\n")
    let out = dir.file("out")
    try ConvertTest.run([input], .criteo, into: out) {
      $0.makeEncoder = { layout in Bucketed(label: layout.indexByName["label"]!, i1: layout.indexByName["I1"]!) }
    }
    XCTAssertEqual(try ConvertTest.examples(out), [
      Example(["I1_bucket": .int64List([2]), "label": .int64List([1])]),
      Example(["I1_bucket": .int64List([-1]), "label": .int64List([0])]),
    ])
  }
}
