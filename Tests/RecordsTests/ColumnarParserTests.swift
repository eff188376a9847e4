import Foundation
import XCTest
@testable import Records

/// A hand-rolled protobuf writer that produces every wire form TensorFlow's files may contain.
struct WireWriter {
  var bytes: [UInt8] = []
  mutating func varint(_ v: UInt64) {
    var v = v
    while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
    bytes.append(UInt8(v))
  }
  mutating func tag(_ field: UInt64, _ wire: UInt64) { varint(field << 3 | wire) }
  mutating func lengthDelimited(_ field: UInt64, _ body: [UInt8]) {
    tag(field, 2); varint(UInt64(body.count)); bytes += body
  }
  mutating func fixed32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
}

/// How a list is put on the wire.
enum ListForm: CaseIterable { case packed, unpacked, twoChunks, mixed }

func encodeList(_ f: Feature, form: ListForm, rng: inout SplitMix64) -> (UInt64, [UInt8]) {
  var w = WireWriter()
  switch f {
  case .bytesList(let values):
    for v in values { w.lengthDelimited(1, v) }
    if Bool.random(using: &rng) { w.tag(7, 0); w.varint(99) }  // an unknown field is skipped
    return (1, w.bytes)
  case .int64List(let values):
    func packed(_ vs: ArraySlice<Int64>) -> [UInt8] {
      var p = WireWriter()
      for v in vs { p.varint(UInt64(bitPattern: v)) }
      return p.bytes
    }
    switch form {
    case .packed: if !values.isEmpty { w.lengthDelimited(1, packed(values[...])) }
    case .unpacked: for v in values { w.tag(1, 0); w.varint(UInt64(bitPattern: v)) }
    case .twoChunks:
      let mid = values.count / 2
      w.lengthDelimited(1, packed(values[..<mid])); w.lengthDelimited(1, packed(values[mid...]))
    case .mixed:
      let mid = values.count / 2
      w.lengthDelimited(1, packed(values[..<mid]))
      for v in values[mid...] { w.tag(1, 0); w.varint(UInt64(bitPattern: v)) }
    }
    return (3, w.bytes)
  case .floatList(let values):
    func packed(_ vs: ArraySlice<Float>) -> [UInt8] {
      var p = WireWriter()
      for v in vs { p.fixed32(v.bitPattern) }
      return p.bytes
    }
    switch form {
    case .packed: if !values.isEmpty { w.lengthDelimited(1, packed(values[...])) }
    case .unpacked: for v in values { w.tag(1, 5); w.fixed32(v.bitPattern) }
    case .twoChunks:
      let mid = values.count / 2
      w.lengthDelimited(1, packed(values[..<mid])); w.lengthDelimited(1, packed(values[mid...]))
    case .mixed:
      let mid = values.count / 2
      for v in values[..<mid] { w.tag(1, 5); w.fixed32(v.bitPattern) }
      w.lengthDelimited(1, packed(values[mid...]))
    }
    return (2, w.bytes)
  case .unset:
    return (0, [])
  }
}

/// Encodes an Example the way an arbitrary (legal) writer might: random list forms, entries in
/// random order, sometimes value before key, sometimes a key repeated (the last must win).
func encodeVariously(_ features: [(String, Feature)], rng: inout SplitMix64) -> [UInt8] {
  var body = WireWriter()
  for (name, f) in features {
    // A stale earlier entry for the same key, which the later one must replace.
    if UInt8.random(in: 0..<8, using: &rng) == 0 {
      var stale = WireWriter()
      stale.lengthDelimited(1, Array(name.utf8))
      var feat = WireWriter()
      feat.lengthDelimited(3, [0x08, 0x2a])
      stale.lengthDelimited(2, feat.bytes)
      body.lengthDelimited(1, stale.bytes)
    }
    var feature = WireWriter()
    if f != .unset {
      let (field, list) = encodeList(f, form: ListForm.allCases.randomElement(using: &rng)!, rng: &rng)
      feature.lengthDelimited(field, list)
    }
    var entry = WireWriter()
    if Bool.random(using: &rng) {
      entry.lengthDelimited(1, Array(name.utf8)); entry.lengthDelimited(2, feature.bytes)
    } else {
      entry.lengthDelimited(2, feature.bytes); entry.lengthDelimited(1, Array(name.utf8))
    }
    body.lengthDelimited(1, entry.bytes)
  }
  var example = WireWriter()
  example.lengthDelimited(1, body.bytes)
  return example.bytes
}

func randomFeature(_ kind: ValueKind, rng: inout SplitMix64) -> Feature {
  let n = Int.random(in: 0...6, using: &rng)
  switch kind {
  case .int64:
    return .int64List((0..<n).map { _ in
      Bool.random(using: &rng) ? Int64.random(in: -300...300, using: &rng) : Int64(bitPattern: rng.next())
    })
  case .float:
    return .floatList((0..<n).map { _ in
      Bool.random(using: &rng) ? Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) : Float.random(in: -5...5, using: &rng)
    })
  case .bytes:
    return .bytesList((0..<n).map { _ in (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } })
  }
}

final class ColumnarParserTests: XCTestCase {
  func testColumnarParseMatchesTensorFlowsParseExample() throws {
    let golden = try Fixture.json("examples.parse_example.json")
    let records = Array(try readAll(Fixture.path("examples_none.tfrecord"))[0..<48])
    let spec = try ParseSpec([
      .scalar("id", .int64), .scalar("label", .float),
      .scalar("opt_int", .int64, default: .int64([-7])),
      .scalar("opt_str", .bytes, default: .bytes([Array("DEFAULT".utf8)])),
      FeatureSpec("ints", .int64), FeatureSpec("floats", .float), FeatureSpec("strs", .bytes),
      FeatureSpec("big_ints", .int64, shape: .fixed(2), default: .int64([0, 0])),
      FeatureSpec("special_floats", .float, shape: .fixed(2), default: .float([0, 0])),
      FeatureSpec("empty_int", .int64),
    ])
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse(records, into: batch)
    XCTAssertEqual(batch.count, 48)
    let id = batch.column(named: "id")!
    XCTAssertEqual(id.int64Values.map(String.init), golden["id"]!.arrayValue!.map { $0.stringValue! })
    XCTAssertEqual(batch.column(named: "label")!.floatValues.map { $0 }, golden["label"]!.arrayValue!.map { $0.floatValue! })
    XCTAssertEqual(batch.column(named: "opt_int")!.int64Values.map(String.init), golden["opt_int"]!.arrayValue!.map { $0.stringValue! })
    let optStr = batch.column(named: "opt_str")!
    XCTAssertEqual((0..<48).map { Base64.encode(optStr.bytes($0)) }, golden["opt_str"]!.arrayValue!.map { $0["b64"]!.stringValue! })
    let big = batch.column(named: "big_ints")!
    XCTAssertEqual((0..<48).map { r in big.row(r).map { String(big.int64Values[$0]) } },
                   golden["big_ints"]!.arrayValue!.map { $0.arrayValue!.map { $0.stringValue! } })
    let special = batch.column(named: "special_floats")!
    XCTAssertEqual((0..<48).map { r in special.row(r).map { hexBits(special.floatValues[$0]) } },
                   golden["special_floats_bits"]!.arrayValue!.map { $0.arrayValue!.map { $0.stringValue! } })
    // VarLen: TF's SparseTensor indices [row, position] and values, in row order.
    for (name, render) in [("ints", { (c: ParsedColumn, i: Int) in String(c.int64Values[i]) }),
                           ("strs", { (c: ParsedColumn, i: Int) in Base64.encode(c.bytes(i)) })] {
      let c = batch.column(named: name)!
      let g = golden[name]!
      let indices = g["indices"]!.arrayValue!.map { $0.arrayValue!.map { $0.intValue! } }
      var ours: [[Int]] = []
      for r in 0..<48 { for (k, _) in c.row(r).enumerated() { ours.append([r, k]) } }
      XCTAssertEqual(ours, indices, name)
      let values = (0..<c.row(47).upperBound).map { render(c, $0) }
      let expectedValues = g["values"]!.arrayValue!.map { $0["b64"]?.stringValue ?? $0.stringValue! }
      XCTAssertEqual(values, expectedValues, name)
    }
    XCTAssertEqual(batch.column(named: "empty_int")!.int64Values.count, 0)
  }

  func testRaggedRowLengthsMatchTensorFlowOnAllFiftyRecords() throws {
    let golden = try Fixture.json("examples.parse_example.json")
    let records = try readAll(Fixture.path("examples_none.tfrecord"))
    let spec = try ParseSpec([FeatureSpec("ints", .int64)])
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse(records, into: batch)
    let c = batch.column(0)
    XCTAssertEqual((0..<50).map { c.row($0).count }, golden["ragged_ints_row_lengths"]!.arrayValue!.map { $0.intValue! })
  }

  func testAMissingRequiredFeatureFailsLikeTensorFlowNamingTheRecordAndFeature() throws {
    // Records 48 and 49 lack 'id', which is why TF's golden covers only records 0..47.
    let records = try readAll(Fixture.path("examples_none.tfrecord"))
    let spec = try ParseSpec([.scalar("id", .int64)])
    XCTAssertThrowsError(try ExampleParser(spec: spec).parse(records, into: ParsedBatch(spec: spec))) { error in
      let e = error as! RecordsError
      XCTAssertEqual(e.record, 48)
      XCTAssertEqual(e.field, "id")
      XCTAssertTrue(e.message.contains("missing"))
    }
  }

  func testAKindOrShapeMismatchIsAnErrorNamingTheFeature() throws {
    let records = try readAll(Fixture.path("examples_none.tfrecord"))
    for (spec, message) in [(try ParseSpec([FeatureSpec("ints", .float)]), "int64_list but the spec expects float_list"),
                            (try ParseSpec([.scalar("big_ints", .int64)]), "has 2 values but the spec's fixed shape needs 1")] {
      XCTAssertThrowsError(try ExampleParser(spec: spec).parse(records, into: ParsedBatch(spec: spec))) { error in
        let e = error as! RecordsError
        XCTAssertEqual(e.record, 0)
        XCTAssertEqual(e.field, spec.features[0].name)
        XCTAssertTrue(e.message.contains(message), e.message)
      }
    }
  }

  func testAnEmptyListIsPresentAndDoesNotTakeTheDefault() throws {
    // TF: a FixedLen feature present with zero values is a shape error, not the default.
    let e = Example(["x": .int64List([])])
    let spec = try ParseSpec([.scalar("x", .int64, default: .int64([5]))])
    XCTAssertThrowsError(try ExampleParser(spec: spec).parse([e.serialized()], into: ParsedBatch(spec: spec)))
    let varSpec = try ParseSpec([FeatureSpec("x", .int64)])
    let batch = ParsedBatch(spec: varSpec)
    try ExampleParser(spec: varSpec).parse([e.serialized(), Example([:]).serialized()], into: batch)
    XCTAssertEqual(Array(batch.column(0).present), [1, 0])
    XCTAssertEqual(batch.column(0).row(0).count, 0)
  }

  func testWireVariantsParseToEveryValue() throws {
    let records = try readAll(Fixture.path("examples_wire_variants.tfrecord"))
    let spec = try ParseSpec([FeatureSpec("i", .int64), FeatureSpec("f", .float)])
    for r in records {
      let batch = ParsedBatch(spec: spec)
      try ExampleParser(spec: spec).parse([r], into: batch)
      let full = try Example(serialized: r)
      XCTAssertEqual(batch.column(0).feature(row: 0), full.features!["i"]!)
      XCTAssertEqual(batch.column(1).feature(row: 0), full.features!["f"]!)
    }
  }

  /// Packed int64 lists with values of every varint length (1 to 10 bytes, negatives
  /// included), in long and short lists, equal what was written; a varint cut off by the list's
  /// end is an error.
  func testPackedInt64ListsOfEveryVarintLengthDecodeExactly() throws {
    var rng = SplitMix64(seed: 56)
    // The top of each varint length: 7·n bits need n bytes; negatives take 10.
    let classes: [Int64] = (1...9).map { Int64(bitPattern: 1 << UInt64(7 * $0 - 1)) } + [-1]
    let spec = try ParseSpec([FeatureSpec("v", .int64)])
    let batch = ParsedBatch(spec: spec)
    var lists: [[Int64]] = []
    for _ in 0..<300 {
      lists.append((0..<Int.random(in: 0...40, using: &rng)).map { _ in
        let top = classes.randomElement(using: &rng)!
        return top < 0 ? -Int64.random(in: 1...1000, using: &rng) : Int64.random(in: (top >> 7)...top, using: &rng)
      })
    }
    lists.append(Array(repeating: 5, count: 17))
    lists.append([Int64.max, 0, Int64.min, 127, 128, 1 << 56 - 1, 1 << 56])
    try ExampleParser(spec: spec).parse(lists.map { Example(["v": .int64List($0)]).serialized() }, into: batch)
    for (r, list) in lists.enumerated() { XCTAssertEqual(Array(batch.column(0).int64Values[batch.column(0).row(r)]), list, "list \(r)") }
    /// An Example whose int64 feature "v" is one packed list of exactly these bytes.
    func example(packed bytes: [UInt8]) -> [UInt8] {
      var list = WireWriter(), feature = WireWriter(), entry = WireWriter(), features = WireWriter(), example = WireWriter()
      list.lengthDelimited(1, bytes)
      feature.lengthDelimited(3, list.bytes)
      entry.lengthDelimited(1, Array("v".utf8))
      entry.lengthDelimited(2, feature.bytes)
      features.lengthDelimited(1, entry.bytes)
      example.lengthDelimited(1, features.bytes)
      return example.bytes
    }
    // A packed list of nine 0x80 bytes: no stop bit before the list ends.
    let cut = example(packed: [UInt8](repeating: 0x80, count: 9))
    XCTAssertThrowsError(try ExampleParser(spec: spec).parse([cut], into: ParsedBatch(spec: spec))) { error in
      XCTAssertTrue("\(error)".contains("truncated varint"), "\(error)")
    }
    // The same list ended by a stop byte is one value.
    let whole = example(packed: [UInt8](repeating: 0x80, count: 8) + [0x01])
    let one = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse([whole], into: one)
    XCTAssertEqual(Array(one.column(0).int64Values), [1 << 56])
  }

  /// A key repeated within one record, its entries taking the canonical layout and the general
  /// one in every order: the last entry wins, as in a libprotobuf-c decode. The parser marks the
  /// two paths differently (a byte per column, and a stamped state), so each handover is checked,
  /// in a record that also has other features before and after.
  func testARepeatedKeyKeepsTheLastEntryAcrossBothEntryLayouts() throws {
    /// A map entry for "k": canonical (key, then a one-chunk packed list) or general (value
    /// first, then key, with the values unpacked).
    func entry(_ key: String, _ values: [Int64], canonical: Bool) -> [UInt8] {
      var list = WireWriter(), feature = WireWriter(), e = WireWriter()
      if canonical {
        var packed = WireWriter()
        for v in values { packed.varint(UInt64(bitPattern: v)) }
        list.lengthDelimited(1, packed.bytes)
      } else {
        for v in values { list.tag(1, 0); list.varint(UInt64(bitPattern: v)) }
      }
      feature.lengthDelimited(3, list.bytes)
      if canonical {
        e.lengthDelimited(1, Array(key.utf8)); e.lengthDelimited(2, feature.bytes)
      } else {
        e.lengthDelimited(2, feature.bytes); e.lengthDelimited(1, Array(key.utf8))
      }
      var w = WireWriter()
      w.lengthDelimited(1, e.bytes)
      return w.bytes
    }
    /// An entry for "k" whose feature is a float list (another kind than the spec's).
    func floatEntry() -> [UInt8] {
      var list = WireWriter(), feature = WireWriter(), e = WireWriter(), w = WireWriter()
      list.lengthDelimited(1, [0, 0, 0x80, 0x3F])
      feature.lengthDelimited(2, list.bytes)
      e.lengthDelimited(1, Array("k".utf8)); e.lengthDelimited(2, feature.bytes)
      w.lengthDelimited(1, e.bytes)
      return w.bytes
    }
    func record(_ entries: [[UInt8]]) -> [UInt8] {
      var example = WireWriter()
      example.lengthDelimited(1, entries.flatMap { $0 })
      return example.bytes
    }
    let spec = try ParseSpec([FeatureSpec("a", .int64), FeatureSpec("k", .int64), FeatureSpec("z", .int64)])
    let a = entry("a", [1], canonical: true), z = entry("z", [9, 8], canonical: true)
    var payloads: [[UInt8]] = []
    for first in [true, false] {
      for second in [true, false] {
        payloads.append(record([a, entry("k", [5, 6], canonical: first), z, entry("k", [7], canonical: second)]))
        payloads.append(record([entry("k", [5], canonical: first), entry("k", [300, 2], canonical: second), a]))
      }
    }
    // Three entries, and a kind switch that a later int64 entry undoes.
    payloads.append(record([entry("k", [1], canonical: true), entry("k", [2], canonical: false), entry("k", [3], canonical: true), z]))
    payloads.append(record([a, entry("k", [4], canonical: true), floatEntry(), entry("k", [6], canonical: true)]))
    // The same parser across records, so predictions from earlier records are in play.
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse(payloads + payloads.reversed(), into: batch)
    for (r, payload) in (payloads + payloads.reversed()).enumerated() {
      let full = try Example(serialized: payload)
      for (c, f) in spec.features.enumerated() {
        let expected = full.features?[f.name] ?? .unset
        XCTAssertEqual(batch.column(c).present[r], expected == .unset ? 0 : 1, "record \(r) \(f.name)")
        if expected != .unset { XCTAssertEqual(batch.column(c).feature(row: r), expected, "record \(r) \(f.name)") }
      }
    }
    XCTAssertEqual(Array(batch.column(1).int64Values[batch.column(1).row(0)]), [7], "the last entry wins")
    // A float entry last: the record's "k" is a float list, which the int64 spec rejects.
    XCTAssertThrowsError(try ExampleParser(spec: spec).parse([record([entry("k", [4], canonical: true), floatEntry()])],
                                                             into: ParsedBatch(spec: spec))) { error in
      XCTAssertTrue("\(error)".contains("float_list"), "\(error)")
    }
  }

  /// A feature name of 128 bytes or more has a two-byte key length, which is not the canonical
  /// layout's one byte: such entries parse through the general path, to the same columns as a
  /// full decode (133 bytes: its length varint is 0x85 0x01, whose first byte read alone is 133).
  func testFeatureNamesWithMultiByteLengthsParse() throws {
    let long = String(repeating: "k", count: 132) + "\u{12}"
    let spec = try ParseSpec([FeatureSpec(long, .int64), FeatureSpec("s", .bytes)])
    let records = (0..<3).map { i in
      Example([long: .int64List([Int64(i), 300]), "s": .bytesList([Array("v\(i)".utf8)])]).serialized()
    }
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse(records, into: batch)
    for (r, payload) in records.enumerated() {
      let full = try Example(serialized: payload)
      XCTAssertEqual(batch.column(0).feature(row: r), full.features![long]!, "record \(r)")
      XCTAssertEqual(batch.column(1).feature(row: r), full.features!["s"]!, "record \(r)")
    }
  }

  /// A malformed entry whose first bytes are zeros must not pass for a predicted column whose
  /// name is too long for the parser's one-word entry-head compare: it is an error, as in a full
  /// decode.
  func testAMalformedEntryIsNotTakenForAPredictedColumnWithALongName() throws {
    let long = "a feature name longer than one word"
    let spec = try ParseSpec([FeatureSpec(long, .int64)])
    let good = Example([long: .int64List([3])]).serialized()
    // An entry body of 0x00 (field 0: invalid) followed by bytes laid out like a canonical value.
    var bad = WireWriter(), features = WireWriter()
    features.lengthDelimited(1, [0x00, 0x00, 0x12, 0x04, 0x1A, 0x02, 0x0A, 0x00])
    bad.lengthDelimited(1, features.bytes)
    XCTAssertThrowsError(try Example(serialized: bad.bytes), "libprotobuf-c rejects it too")
    let parser = ExampleParser(spec: spec)
    XCTAssertThrowsError(try parser.parse([good, bad.bytes], into: ParsedBatch(spec: spec))) { error in
      XCTAssertEqual((error as? RecordsError)?.record, 1, "\(error)")
    }
  }


  /// A length byte of 0x80 or more is the first byte of a longer varint, never a length by
  /// itself. Here the Feature's length bytes read `83 0A` (1,283 bytes, past the entry's end, so
  /// a full decode rejects the record), while the bytes taken one at a time would fit the entry
  /// exactly: 0x83 = 131 bytes of Feature, whose list length byte 0x81 = 129 bytes ends it. The
  /// columnar parse must reject it too, whether the column is predicted or seen for the first time.
  func testALengthByteOf128OrMoreIsAVarintAndNotACanonicalLength() throws {
    for (kind, tag, listBody) in [
      (ValueKind.bytes, UInt8(0x0A), [0x0A, 0x7F] + [UInt8](repeating: 0x61, count: 127)),
      (ValueKind.int64, UInt8(0x1A), [0x0A, 0x7F] + [UInt8](repeating: 0x01, count: 127)),
    ] {
      let spec = try ParseSpec([FeatureSpec("a", kind)])
      var features = WireWriter(), bad = WireWriter()
      features.lengthDelimited(1, [0x0A, 0x01, 0x61, 0x12, 0x83, tag, 0x81] + listBody)
      bad.lengthDelimited(1, features.bytes)
      XCTAssertThrowsError(try Example(serialized: bad.bytes), "libprotobuf-c rejects it (\(kind))")
      let good = Example(["a": kind == .bytes ? .bytesList([[0x62]]) : .int64List([2])]).serialized()
      for (records, badIndex) in [([bad.bytes], 0), ([good, good, bad.bytes], 2)] {
        XCTAssertThrowsError(try ExampleParser(spec: spec).parse(records, into: ParsedBatch(spec: spec)), "\(kind)") { error in
          XCTAssertEqual((error as? RecordsError)?.record, badIndex, "\(kind): \(error)")
        }
      }
    }
  }
  /// libprotobuf-c reads a tag or a length prefix of at most 5 bytes and rejects a longer one,
  /// even a non-minimal encoding of a small value; the columnar parse agrees, at every level.
  func testTagsAndLengthPrefixesLongerThanFiveBytesAreRejectedLikeLibprotobufC() throws {
    let spec = try ParseSpec([FeatureSpec("a", .int64)])
    // wrap(level, extra): a record with `extra` appended inside the Example (0), its Features (1),
    // the entry of "a" (2), its Feature (3) or its Int64List (4).
    func wrap(_ level: Int, _ extra: [UInt8]) -> [UInt8] {
      var list = WireWriter(); list.lengthDelimited(1, [0x05]); if level == 4 { list.bytes += extra }
      var feature = WireWriter(); feature.lengthDelimited(3, list.bytes); if level == 3 { feature.bytes += extra }
      var entry = WireWriter(); entry.lengthDelimited(1, [0x61]); entry.lengthDelimited(2, feature.bytes)
      if level == 2 { entry.bytes += extra }
      var features = WireWriter(); features.lengthDelimited(1, entry.bytes); if level == 1 { features.bytes += extra }
      var example = WireWriter(); example.lengthDelimited(1, features.bytes); if level == 0 { example.bytes += extra }
      return example.bytes
    }
    let fiveByteTag: [UInt8] = [0xF8, 0xFF, 0xFF, 0xFF, 0x0F, 0x00]      // field 2^32 - 1, varint 0
    let sixByteTag: [UInt8] = [0xF8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]  // field 15, padded
    let fiveByteLength: [UInt8] = [0x7A, 0x81, 0x80, 0x80, 0x80, 0x00, 0xFF]  // field 15, 1 byte
    let sixByteLength: [UInt8] = [0x7A, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0xFF]
    for level in 0...4 {
      for (extra, valid) in [(fiveByteTag, true), (sixByteTag, false), (fiveByteLength, true), (sixByteLength, false)] {
        let payload = wrap(level, extra)
        let full = try? Example(serialized: payload)
        XCTAssertEqual(full != nil, valid, "libprotobuf-c, level \(level), \(extra)")
        let batch = ParsedBatch(spec: spec)
        let columnar = Result { try ExampleParser(spec: spec).parse([payload], into: batch) }
        if valid {
          XCTAssertNoThrow(try columnar.get(), "level \(level), \(extra)")
          XCTAssertEqual(batch.column(0).feature(row: 0), .int64List([5]), "level \(level), \(extra)")
        } else {
          XCTAssertThrowsError(try columnar.get(), "level \(level), \(extra)")
        }
      }
    }
  }

  /// A feature name with a NUL byte is a different name to TensorFlow and to the columnar parse;
  /// libprotobuf-c keeps names as C strings, so to it the name ends at the NUL.
  func testAFeatureNameWithANulByteIsItsWholeNameAsInTensorFlowWhereLibprotobufCCutsIt() throws {
    let spec = try ParseSpec([FeatureSpec("f", .int64), FeatureSpec("f\0x", .int64)])
    var entry = WireWriter(), features = WireWriter(), example = WireWriter()
    entry.lengthDelimited(1, [0x66, 0x00, 0x78])
    entry.lengthDelimited(2, [0x1A, 0x03, 0x0A, 0x01, 0x07])
    features.lengthDelimited(1, entry.bytes)
    example.lengthDelimited(1, features.bytes)
    XCTAssertTrue(libprotobufCDeparture(example.bytes))
    XCTAssertEqual(Array(try Example(serialized: example.bytes).features!.feature.keys), ["f"], "libprotobuf-c")
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse([example.bytes], into: batch)
    XCTAssertEqual(batch.column(0).present[0], 0, "\"f\" is not in the record")
    XCTAssertEqual(batch.column(1).feature(row: 0), .int64List([7]))
  }

  /// A map entry whose Feature occurs twice with no kind set either time is valid protobuf, read
  /// by TensorFlow (checked with TF 2.21's `tf.train.Example.FromString`) as one Feature with no
  /// kind. libprotobuf-c rejects it (its merge of two messages with no oneof case set fails), so
  /// the full decode retries without the kindless occurrences (`KindlessFeatureMerges`); it and
  /// the columnar parse then agree with TensorFlow, in tf.Example and in a SequenceExample's
  /// context. The retry must not accept what libprotobuf-c rejects for another reason.
  func testAFeatureOccurringTwiceWithoutAKindIsReadAsInTensorFlow() throws {
    let spec = try ParseSpec([FeatureSpec("a", .float), FeatureSpec("b", .int64)])
    func features(_ values: [[UInt8]], other: [UInt8] = [0x1A, 0x00]) -> [UInt8] {
      var entry = WireWriter(), second = WireWriter(), features = WireWriter()
      entry.lengthDelimited(1, Array("a".utf8))
      for v in values { entry.lengthDelimited(2, v) }
      second.lengthDelimited(1, Array("b".utf8))
      second.lengthDelimited(2, other)
      features.lengthDelimited(1, entry.bytes)
      features.lengthDelimited(1, second.bytes)
      return features.bytes
    }
    func record(_ values: [[UInt8]], other: [UInt8] = [0x1A, 0x00]) -> [UInt8] {
      var example = WireWriter()
      example.lengthDelimited(1, features(values, other: other))
      return example.bytes
    }
    let floatList: [UInt8] = [0x12, 0x06, 0x0A, 0x04, 0x00, 0x00, 0x80, 0x3F]
    // Kindless occurrences (empty, or an unknown field only), alone or before and after a kind.
    let forms: [([[UInt8]], Feature)] = [
      ([[], []], .unset), ([[], [0x20, 0x01]], .unset), ([[0x20, 0x01], [0x20, 0x02], []], .unset),
      ([[], [], floatList], .floatList([1])), ([floatList, [], []], .floatList([1])), ([[], floatList, []], .floatList([1])),
    ]
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse(forms.map { record($0.0) }, into: batch)
    for (r, (values, want)) in forms.enumerated() {
      let full = try Example(serialized: record(values))
      XCTAssertEqual(full.features?["a"], want, "form \(r)")
      XCTAssertEqual(full.features?["b"], .int64List([]), "form \(r)")
      XCTAssertEqual(batch.column(0).present[r], want == .unset ? 0 : 1, "form \(r)")
      XCTAssertEqual(batch.column(0).feature(row: r), want == .unset ? .floatList([]) : want, "form \(r)")
      var sequence = WireWriter()
      sequence.lengthDelimited(1, features(values))
      XCTAssertEqual(try SequenceExample(serialized: sequence.bytes).context?["a"], want, "context, form \(r)")
    }
    // Still rejected: a kindless occurrence beside a malformed one (a 6-byte tag inside it), or
    // beside a malformed entry elsewhere.
    let sixByteTag: [UInt8] = [0xF8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]
    for payload in [record([[], sixByteTag]), record([[], []], other: [0x1A, 0x03, 0x0A])] {
      XCTAssertThrowsError(try Example(serialized: payload))
      XCTAssertThrowsError(try ExampleParser(spec: spec).parse([payload], into: ParsedBatch(spec: spec)))
    }
  }

  /// The property: for any legal encoding, the columnar parse equals a libprotobuf-c decode.
  func testColumnarParseAgreesWithLibprotobufCOnRandomExamples() throws {
    var rng = SplitMix64(seed: 20261122)
    let names = (0..<12).map { "f\($0)" } + ["a much longer feature name that exceeds a cache line in length perhaps", "ü", ""]
    let kinds = names.map { _ in ValueKind.allCases.randomElement(using: &rng)! }
    // Every other feature is in the spec; the rest must be skipped (and still validated).
    let spec = try ParseSpec(names.indices.filter { $0 % 2 == 0 || $0 >= 12 }.map { FeatureSpec(names[$0], kinds[$0]) })
    let parser = ExampleParser(spec: spec)
    let batch = ParsedBatch(spec: spec)
    var payloads: [[UInt8]] = []
    for _ in 0..<600 {
      var features: [(String, Feature)] = []
      for (i, name) in names.enumerated() where Int.random(in: 0..<4, using: &rng) > 0 {
        features.append((name, Int.random(in: 0..<10, using: &rng) == 0 ? .unset : randomFeature(kinds[i], rng: &rng)))
      }
      features.shuffle(using: &rng)
      payloads.append(encodeVariously(features, rng: &rng))
    }
    try parser.parse(payloads, into: batch)
    XCTAssertEqual(batch.count, payloads.count)
    for (r, payload) in payloads.enumerated() {
      let full = try Example(serialized: payload)
      for (c, f) in spec.features.enumerated() {
        let col = batch.column(c)
        let expected = full.features?[f.name] ?? .unset
        if expected == .unset {
          XCTAssertEqual(col.present[r], 0, "record \(r) \(f.name)")
          XCTAssertEqual(col.row(r).count, 0)
        } else {
          XCTAssertEqual(col.present[r], 1, "record \(r) \(f.name)")
          XCTAssertEqual(col.feature(row: r), expected, "record \(r) \(f.name)")
        }
      }
    }
  }

  /// Records as writers emit them (one canonical entry per feature), with features coming and
  /// going from record to record, over more than 64 spec columns: the reader's chunk path and
  /// the per-record path both agree with a full decode, defaults included.
  func testWideRecordsWithFeaturesComingAndGoingAgreeWithAFullDecode() throws {
    var rng = SplitMix64(seed: 7)
    let names = (0..<150).map { "feature_\($0)" }
    let kinds = names.map { _ in ValueKind.allCases.randomElement(using: &rng)! }
    // Every other name is in the spec (75 columns); every third of those is a scalar with a default.
    var specs: [FeatureSpec] = []
    for i in stride(from: 0, to: names.count, by: 2) {
      guard i % 3 == 0 else { specs.append(FeatureSpec(names[i], kinds[i])); continue }
      let d: DefaultValues
      switch kinds[i] {
      case .int64: d = .int64([-7])
      case .float: d = .float([0.25])
      case .bytes: d = .bytes([Array("none".utf8)])
      }
      specs.append(.scalar(names[i], kinds[i], default: d))
    }
    let spec = try ParseSpec(specs)
    var payloads: [[UInt8]] = []
    for _ in 0..<700 {
      var features: [String: Feature] = [:]
      for (i, name) in names.enumerated() where Int.random(in: 0..<5, using: &rng) > 0 {
        // Short lists of short values, so every entry takes the canonical (one-byte length) layout.
        let n = i % 6 == 0 ? 1 : Int.random(in: 0...3, using: &rng)  // a spec scalar has exactly one value
        switch kinds[i] {
        case .int64: features[name] = .int64List((0..<n).map { _ in Int64.random(in: -5...100_000, using: &rng) })
        case .float: features[name] = .floatList((0..<n).map { _ in Float.random(in: -5...5, using: &rng) })
        case .bytes: features[name] = .bytesList((0..<n).map { _ in (0..<Int.random(in: 0...12, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } })
        }
      }
      payloads.append(Example(features).serialized())
    }
    let dir = ScratchDirectory()
    let path = dir.file("wide.tfrecord")
    let writer = try TFRecordWriter(path: path)
    for p in payloads { try writer.write(p) }
    try writer.close()

    var rowsByPath: [String: [[Feature]]] = ["chunks": [], "records": []]
    let reader = ExampleReader(paths: [path], spec: spec, batchSize: 37, threads: 2)
    while let b = try reader.next() {
      for r in 0..<b.count { rowsByPath["chunks"]!.append(spec.features.indices.map { b.column($0).feature(row: r) }) }
    }
    let batch = ParsedBatch(spec: spec)
    try ExampleParser(spec: spec).parse(payloads, into: batch)
    for r in 0..<batch.count { rowsByPath["records"]!.append(spec.features.indices.map { batch.column($0).feature(row: r) }) }

    for (way, rows) in rowsByPath {
      XCTAssertEqual(rows.count, payloads.count, way)
      for (r, payload) in payloads.enumerated() where r < rows.count {
        let full = try Example(serialized: payload)
        for (c, f) in spec.features.enumerated() {
          var expected = full.features?[f.name] ?? .unset
          if expected == .unset {
            switch f.defaultValue {
            case .int64(let v)?: expected = .int64List(v)
            case .float(let v)?: expected = .floatList(v)
            case .bytes(let v)?: expected = .bytesList(v)
            case nil:
              switch f.kind {
              case .int64: expected = .int64List([])
              case .float: expected = .floatList([])
              case .bytes: expected = .bytesList([])
              }
            }
          }
          XCTAssertEqual(rows[r][c], expected, "\(way): record \(r) \(f.name)")
        }
      }
    }
  }

  func testParsedColumnsAreReusedWithoutGrowingForever() throws {
    let spec = try ParseSpec([FeatureSpec("ints", .int64)])
    let records = try readAll(Fixture.path("examples_none.tfrecord"))
    let batch = ParsedBatch(spec: spec)
    let parser = ExampleParser(spec: spec)
    try parser.parse(records, into: batch)
    let first = batch.column(0).int64Values.count
    try parser.parse(records, into: batch)
    XCTAssertEqual(batch.column(0).int64Values.count, first)
    XCTAssertEqual(batch.count, 50)
  }

  /// The first canonical tier checks a predicted column's whole entry header in one compare, for
  /// keys of up to 6 bytes and one-byte entry lengths. Around each of its limits (key lengths
  /// 0...7; a list from empty to the last size whose entry length fits one byte, and one more;
  /// the entry first, last with fewer than 16 bytes after its start, or alone) and for every
  /// header length byte off by one either way, the columnar parse agrees with a full decode:
  /// the same records accepted, the same values. (It may also reject a well-formed record whose
  /// feature has another kind than the spec's, as `parse_example` does.)
  func testTheOneCompareEntryHeaderAgreesWithAFullDecodeAroundEveryLimit() throws {
    func entry(_ key: [UInt8], _ kindField: UInt64, _ list: [UInt8]) -> [UInt8] {
      var feature = WireWriter(), entry = WireWriter(), wrapped = WireWriter()
      feature.lengthDelimited(kindField, list)
      entry.lengthDelimited(1, key)
      entry.lengthDelimited(2, feature.bytes)
      wrapped.lengthDelimited(1, entry.bytes)
      return wrapped.bytes
    }
    func example(_ entries: [UInt8]) -> [UInt8] {
      var w = WireWriter()
      w.lengthDelimited(1, entries)
      return w.bytes
    }
    func packed(_ values: [Int64]) -> [UInt8] {
      var chunk = WireWriter(), list = WireWriter()
      for v in values { chunk.varint(UInt64(bitPattern: v)) }
      list.lengthDelimited(1, chunk.bytes)
      return list.bytes
    }
    func packed(_ values: [Float]) -> [UInt8] {
      var chunk = WireWriter(), list = WireWriter()
      for v in values { chunk.fixed32(v.bitPattern) }
      list.lengthDelimited(1, chunk.bytes)
      return list.bytes
    }
    let before = entry(Array("first".utf8), 3, packed([Int64(1)]))
    let after = entry(Array("zz".utf8), 3, packed([Int64(300), 2, 3]))
    var checked = 0, rejected = 0
    for keyLength in 0...7 {
      let key = [UInt8](repeating: 0x6B, count: keyLength)
      // The largest list whose entry length, keyLength + 8 + its size, is one byte.
      let most = 0x77 - keyLength
      var lists: [(ValueKind, UInt64, [UInt8])] = []
      for size in [0, 1, 7, 8, 9, most - 1, most, most + 1] {
        var value = WireWriter()
        value.lengthDelimited(1, [UInt8](repeating: 0x61, count: size))
        lists.append((.bytes, 1, value.bytes))
      }
      // Single values at both ends of every varint length (1...10 bytes), and lists.
      var int64Lists: [[Int64]] = [[], [0], [300], [-1], [.min], [1, 2], [128, 1], [1, 128], [300, 300, 300]]
      for n in 1...9 {
        let lowest: UInt64 = 1 << UInt64(7 * n - 7), highest: UInt64 = (1 << UInt64(7 * n)) &- 1
        int64Lists += [[Int64(bitPattern: lowest)], [Int64(bitPattern: highest)]]
      }
      int64Lists += [Array(repeating: 5, count: most), Array(repeating: 5, count: most + 1)]
      for values in int64Lists {
        lists.append((.int64, 3, packed(values)))
      }
      lists.append((.int64, 3, [0x0A, 0x01, 0x80]))  // a one-byte chunk without a stop bit
      for n in [0, 1, 2, most / 4, most / 4 + 1] {
        lists.append((.float, 2, packed((0..<n).map { Float($0) + 0.5 })))
      }
      for n in [1, 2, 3, 5, 7] {  // a packed chunk that is not whole floats
        lists.append((.float, 2, [0x0A, UInt8(n)] + [UInt8](repeating: 0x3F, count: n)))
      }
      for (kind, field, list) in lists {
        let spec = try ParseSpec([FeatureSpec("first", .int64), FeatureSpec(String(decoding: key, as: UTF8.self), kind),
                                  FeatureSpec("zz", .int64)])
        let ours = entry(key, field, list)
        let teacherList = kind == .bytes ? [0x0A, 0x01, 0x62] : kind == .int64 ? packed([Int64(2)]) : packed([Float(2)])
        let teacherEntry = entry(key, field, teacherList)
        for (layout, teacher) in [(before + ours + after, before + teacherEntry + after), (before + ours, before + teacherEntry),
                                  (ours, teacherEntry)] {
          // The entry's own length bytes (its tag's length, and the Feature's, the list's and
          // the chunk's), each one off either way; the record's outer lengths stay consistent.
          var variants = [layout]
          let start = layout.count - ours.count - (layout.count > before.count + ours.count ? after.count : 0)
          for at in [1, 5 + keyLength, 7 + keyLength, 9 + keyLength] where start + at < start + ours.count {
            for delta in [-1, 1] {
              var v = layout
              v[start + at] = UInt8(truncatingIfNeeded: Int(v[start + at]) + delta)
              variants.append(v)
            }
          }
          for entries in variants {
            let record = example(entries)
            let full = try? Example(serialized: record)
            let batch = ParsedBatch(spec: spec)
            let what = "key length \(keyLength), \(kind) list \(list.prefix(12)), entries \(entries.prefix(24))"
            do {
              // A well-formed record of the same layout teaches the parser the column order;
              // then the record itself, twice, on predicted columns.
              try ExampleParser(spec: spec).parse([example(teacher), record, record], into: batch)
              guard let full else { XCTFail("accepted what a full decode rejects: \(what)"); continue }
              for (c, f) in spec.features.enumerated() {
                let expected = full.features?[f.name] ?? .unset
                for r in 1..<3 {
                  XCTAssertEqual(batch.column(c).present[r] == 1 ? batch.column(c).feature(row: r) : .unset, expected, "\(what), \(f.name)")
                }
              }
              checked += 1
            } catch let e as RecordsError {
              rejected += 1
              XCTAssertEqual(e.record, 1, "\(what): \(e)")
              XCTAssertFalse(full != nil && e.kind == .malformedProto, "rejected a well-formed record: \(what): \(e)")
            }
          }
        }
      }
    }
    XCTAssertGreaterThan(checked, 300)
    XCTAssertGreaterThan(rejected, 300)
  }
}

extension ColumnarParserTests {
  /// A spec with no features (`ctrkit analyze` reads the data once even when nothing is to be
  /// fitted) counts the records and fills no columns.
  func testAnEmptySpecParsesEveryRecordIntoNoColumns() throws {
    let spec = try ParseSpec([])
    let records = (0..<70).map { i in Example(["a": .int64List([Int64(i)]), "b": .bytesList([[0x61]])]).serialized() }
    let batch = ParsedBatch(spec: spec)
    let parser = ExampleParser(spec: spec)
    try parser.parse(records, into: batch)
    XCTAssertEqual(batch.count, 70)
    try parser.parse(records, into: batch)
    XCTAssertEqual(batch.count, 70)
  }
}
