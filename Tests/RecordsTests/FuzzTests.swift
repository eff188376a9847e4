import Foundation
import XCTest
@testable import Records

/// Whether a tf.Example has a feature name with a NUL byte, where the decoders cannot agree:
/// libprotobuf-c keeps a `string` as a C string, so the name ends at the NUL (`"f\0x"` reads as
/// `"f"`), while TensorFlow 2.21 and the columnar parse keep the whole name. The message is
/// walked with the decoders' own field reader (`KindlessFeatureMerges.fields`).
func libprotobufCDeparture(_ payload: [UInt8]) -> Bool {
  payload.withUnsafeBytes { b in
    func delimited(_ range: Range<Int>, field: UInt64) -> [Range<Int>] {
      (KindlessFeatureMerges.fields(b, range) ?? []).filter { $0.number == field && $0.wireType == 2 }.map { $0.bodyStart..<$0.end }
    }
    for features in delimited(0..<b.count, field: 1) {
      for entry in delimited(features, field: 1) {
        if delimited(entry, field: 1).contains(where: { b[$0].contains(0) }) { return true }
      }
    }
    return false
  }
}

/// Random and mutated bytes through every reader: nothing may crash, every failure is a
/// RecordsError or a decode error, and whenever both decoders accept a payload they agree.
final class FuzzTests: XCTestCase {
  func mutate(_ bytes: [UInt8], rng: inout SplitMix64) -> [UInt8] {
    var b = bytes
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
      guard !b.isEmpty else { break }
      switch Int.random(in: 0..<5, using: &rng) {
      case 0: let i = Int.random(in: 0..<b.count, using: &rng); b[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
      case 1: b.removeLast(Int.random(in: 0...min(b.count, 40), using: &rng))
      case 2: let i = Int.random(in: 0...b.count, using: &rng); b.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: i)
      case 3: let i = Int.random(in: 0..<b.count, using: &rng); b[i] = UInt8.random(in: 0...255, using: &rng)
      default: let i = Int.random(in: 0..<b.count, using: &rng); b.remove(at: i)
      }
    }
    return b
  }

  func testTheReaderNeverCrashesOnMutatedFiles() throws {
    var rng = SplitMix64(seed: 11)
    let dir = ScratchDirectory()
    let sources = ["examples_none.tfrecord", "examples_gzip.tfrecord", "examples_zlib.tfrecord"]
    let originals = try sources.map { try Fixture.data($0) }
    for round in 0..<150 {
      let source = originals[round % originals.count]
      let bytes = mutate(source, rng: &rng)
      let path = dir.file("m\(round)")
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      for skip in [false, true] {
        do {
          let r = try TFRecordReader(path: path, options: ReaderOptions(skipCorrupt: skip))
          while let rec = try r.next() {
            _ = try? Example(serialized: rec.data)
          }
        } catch is RecordsError {
          // expected for many mutations
        }
      }
    }
  }

  func testDecodersNeverCrashAndAgreeAndTheColumnarParseRejectsWhatAFullDecodeRejects() throws {
    var rng = SplitMix64(seed: 5)
    let valid = try readAll(Fixture.path("examples_none.tfrecord")) + readAll(Fixture.path("examples_wire_variants.tfrecord"))
    let spec = try ParseSpec(["id", "ints", "i", "f", "floats", "strs", "name", "label"].map { name -> FeatureSpec in
      let kind: ValueKind = ["floats", "f", "label"].contains(name) ? .float : ["strs", "name"].contains(name) ? .bytes : .int64
      return FeatureSpec(name, kind)
    })
    let parser = ExampleParser(spec: spec)
    var bothAccepted = 0
    for round in 0..<4000 {
      let payload = round % 4 == 0
        ? (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        : mutate(valid[round % valid.count], rng: &rng)
      let full = try? Example(serialized: payload)
      let batch = ParsedBatch(spec: spec)
      var columnarOK = true
      do {
        try parser.parse([payload], into: batch)
      } catch let e as RecordsError {
        columnarOK = false
        XCTAssertTrue([.malformedProto, .invalidInput].contains(e.kind))
        // It may reject a well-formed payload only for a kind other than the spec's, or for a
        // tag of field number 0 written in more than one byte (`80 00`), which protobuf forbids
        // (Python's protobuf rejects it) and libprotobuf-c 1.4 keeps as an unknown field.
        XCTAssertFalse(full != nil && e.kind == .malformedProto && !"\(e)".contains("field number 0"), "round \(round): \(e)")
      }
      // Nor may it accept what libprotobuf-c rejects; a name with a NUL byte cannot be compared.
      if libprotobufCDeparture(payload) { continue }
      XCTAssertFalse(full == nil && columnarOK, "round \(round): the columnar parse accepted a payload libprotobuf-c rejects")
      if let full, columnarOK {
        bothAccepted += 1
        for (c, f) in spec.features.enumerated() {
          let expected = full.features?[f.name] ?? .unset
          let col = batch.column(c)
          XCTAssertEqual(col.present[0] == 1 ? col.feature(row: 0) : .unset, expected == .unset || expected.kindName == f.kind.protoName ? expected : .unset,
                         "round \(round) feature \(f.name)")
        }
      }
    }
    XCTAssertGreaterThan(bothAccepted, 200, "enough payloads survive mutation for the agreement check to mean something")
  }
}
