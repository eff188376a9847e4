import Foundation
import XCTest
@testable import Features
import Records

final class ConvertEncoderTests: XCTestCase {
  let schema = ConvertSchema(columns: [
    ConvertColumn("label", .int64), ConvertColumn("i", .int64), ConvertColumn("f", .float),
    ConvertColumn("s", .bytes), ConvertColumn("ids", .int64, separator: "^"), ConvertColumn("tags", .bytes, separator: "|"),
    ConvertColumn("w", .float, separator: ";"), ConvertColumn("gone", .bytes, drop: true),
  ], label: "label", header: false, delimiter: "\t")

  func randomLine(_ rng: inout SplitMix64) -> String {
    func maybe(_ s: @autoclosure () -> String) -> String { Int.random(in: 0..<4, using: &rng) == 0 ? "" : s() }
    let ints: [Int64] = [0, 1, -1, 127, 128, -128, 300, Int64.max, Int64.min, 1 << 35, -(1 << 40)]
    let floats = ["0.5", "-2.25", "3.9", "1e-05", "100000.0", "-0.0", "7"]
    let words = ["a", "bc", "ünï", "x y", String(repeating: "z", count: 200), "8d7f3b2a"]
    var fields: [String] = [String(Int.random(in: 0...1, using: &rng))]
    fields.append(maybe(String(ints.randomElement(using: &rng)!)))
    fields.append(maybe(floats.randomElement(using: &rng)!))
    fields.append(maybe(words.randomElement(using: &rng)!))
    fields.append(maybe((0..<Int.random(in: 1...40, using: &rng)).map { _ in String(ints.randomElement(using: &rng)!) }.joined(separator: "^")))
    fields.append(maybe((0..<Int.random(in: 1...5, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: "|")))
    fields.append(maybe((0..<Int.random(in: 1...6, using: &rng)).map { _ in floats.randomElement(using: &rng)! }.joined(separator: ";")))
    fields.append("dropped")
    return fields.joined(separator: "\t")
  }

  func testWireBytesEqualLibprotobufCSerializationOfTheSameExample() throws {
    let layout = try ConvertLayout(schema: schema, format: .tsv)
    let parser = DelimitedRowParser(layout: layout)
    let encoder = ExampleWireEncoder(layout: layout)
    let out = ByteAccumulator()
    var rng = SplitMix64(seed: 7)
    for _ in 0..<500 {
      var line = Array(randomLine(&rng).utf8)
      try line.withUnsafeMutableBufferPointer { b in
        try parser.parse(UnsafePointer(b.baseAddress!), start: 0, end: b.count)
      }
      out.removeAll()
      try encoder.encode(parser.row, into: out)
      let expected = parser.row.example()
      XCTAssertNil(expected.features?.feature["gone"], "dropped columns are not written")
      XCTAssertEqual(Array(out.bytes), expected.serialized(), String(decoding: line, as: UTF8.self))
      XCTAssertEqual(try Example(serialized: Array(out.bytes)), expected)
    }
  }

  func testWireWriterMatchesForEmptyListsUnsetFeaturesAndEmptyExamples() throws {
    let cases: [Example] = [
      Example([:]),
      Example(["a": .int64List([]), "b": .floatList([]), "c": .bytesList([]), "d": .unset]),
      Example(["k": .bytesList([[]]), "z": .int64List([-1]), "m": .floatList([.nan, -.infinity, 0])]),
      Example([String(repeating: "n", count: 300): .bytesList([Array(repeating: 7, count: 20_000)])]),
    ]
    for e in cases {
      let out = ByteAccumulator(capacity: 64)
      var w = ExampleWireWriter(output: out)
      w.begin()
      for name in e.features!.feature.keys.sorted() { w.feature(name: name, e.features!.feature[name]!) }
      w.end()
      XCTAssertEqual(Array(out.bytes), e.serialized())
    }
  }

  func testVarintSizesAtEverySevenBitBoundary() {
    for shift in 0..<64 {
      let v = UInt64(1) << shift
      let out = ByteAccumulator()
      out.appendVarint(v)
      XCTAssertEqual(varintSize(v), out.count, "2^\(shift)")
      out.removeAll()
      out.appendVarint(v - 1)
      XCTAssertEqual(varintSize(v - 1), out.count, "2^\(shift) - 1")
    }
  }
}
