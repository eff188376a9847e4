import Foundation
import XCTest
@testable import Features
import Records

final class ConvertManifestTests: XCTestCase {
  func synthetic(_ dir: ScratchDirectory, rows: Int) throws -> String {
    let path = dir.file("synth.tsv")
    _ = try CriteoSynth(seed: 9).generate(rows: rows, output: path, threads: 2)
    return path
  }

  func testManifestListsShardsWithCountsSizesAndChecksumsAndInputsWithRowCounts() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 1800)
    let blank = dir.write("second.tsv", "\n" + (try ConvertTest.lines(input).prefix(10).joined(separator: "\n")) + "\n\n")
    let out = dir.file("out")
    let r = try ConvertTest.run([input, blank], .criteo, into: out) { $0.sharding = .shards(4) }
    let m = try ConvertManifest.read(path: out + "/MANIFEST.json")
    XCTAssertEqual(m, r.manifest)
    XCTAssertEqual(m.records, 1810)
    XCTAssertEqual(m.inputs.map(\.path), [input, blank])
    XCTAssertEqual(m.inputs.map(\.rows), [1800, 10])
    XCTAssertEqual(m.inputs.map(\.blankLines), [0, 2])
    XCTAssertEqual(m.inputs[0].bytes, UInt64(ConvertTest.bytes(input).count))
    XCTAssertEqual(m.rejectedRows, 0)
    XCTAssertEqual(m.rejectsFile, "rejects.tsv")
    XCTAssertEqual(try ConvertTest.lines(out + "/rejects.tsv"), ["file\tline\treason\trow"])
    XCTAssertEqual(m.arguments.shards, 4)
    XCTAssertEqual(m.arguments.deflateEngine, .isal)
    XCTAssertEqual(m.arguments.compressionLevel, 1)
    XCTAssertEqual(m.schema, .criteo)
    XCTAssertEqual(m.shards.map(\.file), (0..<4).map { "part-0000\($0).tfrecord.gz" })
    XCTAssertEqual(m.shards.reduce(0) { $0 + $1.records }, 1810)
    for s in m.shards {
      let bytes = ConvertTest.bytes(out + "/" + s.file)
      XCTAssertEqual(UInt64(bytes.count), s.bytes)
      XCTAssertEqual(s.crc32c, String(format: "%08x", CRC32C.checksum(bytes)))
      var n = 0
      let reader = try TFRecordReader(path: out + "/" + s.file)
      while try reader.next() != nil { n += 1 }
      XCTAssertEqual(n, s.records)
      XCTAssertEqual(reader.streamOffset, s.tfrecordBytes)
    }
    // Stable bytes: keys sorted, no timestamps.
    let text = try String(contentsOfFile: out + "/MANIFEST.json", encoding: .utf8)
    XCTAssertTrue(text.contains("\"shard_checksum\" : \"crc32c (Castagnoli) of the shard file's bytes\""), text)
  }

  func testRerunWithTheSameInputsAndArgumentsDoesNothing() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 500)
    let out = dir.file("out")
    let first = try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(2) }
    XCTAssertFalse(first.upToDate)
    let before = try ConvertTest.files(out)
    let again = try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(2) }
    XCTAssertTrue(again.upToDate)
    XCTAssertEqual(again.manifest, first.manifest)
    XCTAssertEqual(try ConvertTest.files(out), before)
  }

  func testAFinishedConversionOfOtherArgumentsIsNotReplacedWithoutOverwrite() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 500)
    let out = dir.file("out")
    try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(2) }
    XCTAssertThrowsError(try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(3) }) { e in
      let error = e as? ConvertError
      XCTAssertEqual(error?.kind, .output)
      XCTAssertTrue("\(e)".contains("--overwrite"), "\(e)")
    }
    let replaced = try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(3); $0.overwrite = true }
    XCTAssertEqual(replaced.manifest.shards.count, 3)
    XCTAssertEqual(try ConvertTest.shardPaths(out).count, 3, "the old shards are gone")
    // A changed input is recognised too.
    let appended = ConvertTest.bytes(input) + Array(try ConvertTest.lines(input)[0].utf8) + [0x0a]
    FileManager.default.createFile(atPath: input, contents: Data(appended))
    XCTAssertThrowsError(try ConvertTest.run([input], .criteo, into: out) { $0.sharding = .shards(3) }) { e in
      XCTAssertTrue("\(e)".contains("has changed"), "\(e)")
    }
  }

  func testARunInterruptedMidwayIsRedoneToTheSameBytes() throws {
    // What a killed job leaves: some shards renamed (complete files), the next one partial under
    // its hidden name, a partial rejects file, no manifest; plus a stale shard of an older run.
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 1200)
    let clean = dir.file("clean")
    try ConvertTest.run([input], .criteo, into: clean) { $0.sharding = .shards(4) }
    let crashed = dir.file("crashed")
    try FileManager.default.createDirectory(atPath: crashed, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: clean + "/part-00000.tfrecord.gz", toPath: crashed + "/part-00000.tfrecord.gz")
    let half = ConvertTest.bytes(clean + "/part-00001.tfrecord.gz").prefix(1000)
    _ = dir.write("crashed/.part-00001.tfrecord.gz.partial", bytes: Array(half))
    _ = dir.write("crashed/.rejects.tsv.partial", "file\tline\treason\trow\n")
    _ = dir.write("crashed/part-00009.tfrecord.gz", "stale")
    _ = dir.write("crashed/notes.txt", "not ours")
    let r = try ConvertTest.run([input], .criteo, into: crashed) { $0.sharding = .shards(4) }
    XCTAssertFalse(r.upToDate)
    var expected = try ConvertTest.files(clean)
    expected["notes.txt"] = Data("not ours".utf8)
    XCTAssertEqual(try ConvertTest.files(crashed), expected, "same shards and manifest, nothing stale, other files kept")
  }

  func testShardNamedFilesNotWrittenByAConversionAreNotRemovedWithoutOverwrite() throws {
    let dir = ScratchDirectory()
    let input = try synthetic(dir, rows: 100)
    let out = dir.file("out")
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    _ = dir.write("out/part-00000.tfrecord.gz", "someone's data")
    XCTAssertThrowsError(try ConvertTest.run([input], .criteo, into: out)) { e in
      XCTAssertEqual((e as? ConvertError)?.path, out + "/part-00000.tfrecord.gz")
      XCTAssertTrue("\(e)".contains("was not written by ctrkit convert"), "\(e)")
    }
    XCTAssertEqual(ConvertTest.bytes(out + "/part-00000.tfrecord.gz"), Array("someone's data".utf8))
    let r = try ConvertTest.run([input], .criteo, into: out) { $0.overwrite = true }
    XCTAssertEqual(r.manifest.records, 100)
  }

  func testOwnedFileNamesAreOnlyShardsTheirTemporariesAndTheRejects() {
    for name in ["part-00000.tfrecord.gz", "part-12345.tfrecord", "part-000001.tfrecord.zst", ".part-00003.tfrecord.zz.partial",
                 "rejects.tsv", ".rejects.tsv.partial", ".MANIFEST.json.partial"] {
      XCTAssertTrue(ConvertJob.isOwnedFile(name), name)
    }
    for name in ["MANIFEST.json", "part-1.tfrecord.gz", "part-00000.tfrecord.bz2", "data.csv", "part-00000.tfrecord.gz.bak",
                 ".part-00000.tfrecord.gz"] {
      XCTAssertFalse(ConvertJob.isOwnedFile(name), name)
    }
  }
}
