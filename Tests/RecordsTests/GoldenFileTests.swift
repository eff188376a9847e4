import XCTest
@testable import Records

/// Files written by real TensorFlow 2.21 (../shared/compat) decode to their recorded content.
final class GoldenFileTests: XCTestCase {
  func checkExamplesDecode(_ file: String, compression: Compression = .auto, inflater: Inflater = .default,
                           line: UInt = #line) throws {
    let expected = try Fixture.jsonLines("examples.expected.jsonl")
    let records = try readAll(Fixture.path(file), compression: compression, inflater: inflater)
    XCTAssertEqual(records.count, 50, line: line)
    for (i, (payload, golden)) in zip(records, expected).enumerated() {
      XCTAssertEqual(Base64.encode(payload), golden["serialized_b64"]!.stringValue!, "record \(i)", line: line)
      let example = try Example(serialized: payload)
      XCTAssertEqual(example.features != nil, golden["has_features_field"]!.boolValue!, "record \(i)", line: line)
      let goldenFeatures = golden["features"]!.objectMembers!
      XCTAssertEqual(Set(example.features?.feature.keys.map { $0 } ?? []), Set(goldenFeatures.map(\.0)), "record \(i)", line: line)
      for (name, g) in goldenFeatures {
        XCTAssertEqual(goldenDescription(example.features![name]!), goldenDescription(g), "record \(i) feature \(name)", line: line)
      }
    }
  }

  func testUncompressedExamplesWrittenByTensorFlowDecode() throws {
    try checkExamplesDecode("examples_none.tfrecord")
  }

  func testGzipExamplesWrittenByTensorFlowDecode() throws {
    try checkExamplesDecode("examples_gzip.tfrecord")
    try checkExamplesDecode("examples_gzip.tfrecord", compression: .gzip, inflater: .zlib)
  }

  func testZlibExamplesWrittenByTensorFlowDecode() throws {
    try checkExamplesDecode("examples_zlib.tfrecord")
    try checkExamplesDecode("examples_zlib.tfrecord", compression: .zlib, inflater: .zlib)
  }

  func testCompressionIsDetectedFromMagicBytesAndAnExplicitChoiceOverrides() throws {
    XCTAssertEqual(try TFRecordReader(path: Fixture.path("examples_gzip.tfrecord")).compression, .gzip)
    XCTAssertEqual(try TFRecordReader(path: Fixture.path("examples_zlib.tfrecord")).compression, .zlib)
    XCTAssertEqual(try TFRecordReader(path: Fixture.path("examples_none.tfrecord")).compression, .none)
    // Reading a gzip file as uncompressed must fail on its first header, not silently.
    XCTAssertThrowsError(try readAll(Fixture.path("examples_gzip.tfrecord"), compression: .none)) { error in
      XCTAssertEqual((error as? RecordsError)?.kind, .corruptLength)
    }
  }

  func testAValidRecordHeaderWinsOverALookalikeZlibMagic() {
    // A record of length 40056 starts with the bytes 78 9c, the usual zlib header.
    var header = [UInt8](repeating: 0, count: 12)
    header.withUnsafeMutableBytes { h in
      h.storeBytes(of: UInt64(40056).littleEndian, as: UInt64.self)
      let crc = CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: h[0..<8])))
      h.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
    }
    XCTAssertEqual(Array(header[0..<2]), [0x78, 0x9c])
    XCTAssertEqual(header.withUnsafeBytes { Compression.detect(prefix: $0) }, .none)
    XCTAssertEqual(([0x78, 0x9c, 1, 2] as [UInt8]).withUnsafeBytes { Compression.detect(prefix: $0) }, .zlib)
    XCTAssertEqual(([0x28, 0xb5, 0x2f, 0xfd] as [UInt8]).withUnsafeBytes { Compression.detect(prefix: $0) }, .zstd)
  }

  func testOurFramingIsByteIdenticalToTensorFlowsForTheSamePayloads() throws {
    let expected = try Fixture.jsonLines("examples.expected.jsonl")
    let dir = ScratchDirectory()
    let out = dir.file("ours.tfrecord")
    let writer = try TFRecordWriter(path: out)
    for golden in expected { try writer.write(Base64.decode(golden["serialized_b64"]!.stringValue!)!) }
    try writer.close()
    XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: out))), try Fixture.data("examples_none.tfrecord"))
  }

  func testCatPrintsWhatPythonMessageToDictPrints() throws {
    let golden = try Fixture.jsonLines("examples.message_to_dict.jsonl")
    let records = try readAll(Fixture.path("examples_none.tfrecord"))
    XCTAssertEqual(records.count, golden.count)
    for (i, (payload, expected)) in zip(records, golden).enumerated() {
      let ours = try Example(serialized: payload).canonicalJSON
      XCTAssertTrue(jsonEqualIgnoringOrder(ours, expected), "record \(i):\n\(JSONWriter.serialize(ours))\n\(JSONWriter.serialize(expected))")
    }
  }

  func testSequenceExamplesPrintWhatPythonMessageToDictPrints() throws {
    let golden = try Fixture.jsonLines("sequence_examples.message_to_dict.jsonl")
    let records = try readAll(Fixture.path("sequence_examples_none.tfrecord"))
    XCTAssertEqual(records.count, 30)
    for (i, (payload, expected)) in zip(records, golden).enumerated() {
      let ours = try SequenceExample(serialized: payload).canonicalJSON
      XCTAssertTrue(jsonEqualIgnoringOrder(ours, expected), "record \(i):\n\(JSONWriter.serialize(ours))\n\(JSONWriter.serialize(expected))")
    }
  }

  func testSequenceExamplesWrittenByTensorFlowDecode() throws {
    let expected = try Fixture.jsonLines("sequence_examples.expected.jsonl")
    let records = try readAll(Fixture.path("sequence_examples_none.tfrecord"))
    for (i, (payload, golden)) in zip(records, expected).enumerated() {
      let s = try SequenceExample(serialized: payload)
      for (name, g) in golden["context"]!.objectMembers! {
        XCTAssertEqual(goldenDescription(s.context![name]!), goldenDescription(g), "record \(i) context \(name)")
      }
      let lists = golden["feature_lists"]!.objectMembers!
      XCTAssertEqual(Set(s.featureLists?.featureList.keys.map { $0 } ?? []), Set(lists.map(\.0)), "record \(i)")
      for (name, steps) in lists {
        let ours = s.featureLists!.featureList[name]!.feature
        XCTAssertEqual(ours.map(goldenDescription), steps.arrayValue!.map(goldenDescription), "record \(i) list \(name)")
      }
      // Encoding again and decoding gives the same message.
      XCTAssertEqual(try SequenceExample(serialized: s.serialized()), s)
    }
  }

  func testSequenceExamplesMatchTensorFlowsParseSingleSequenceExample() throws {
    let golden = try Fixture.json("sequence_examples.parse_single_sequence_example.json")
    let records = try readAll(Fixture.path("sequence_examples_none.tfrecord"))
    for (i, expected) in golden["results"]!.arrayValue!.enumerated() {
      let s = try SequenceExample(serialized: records[i])
      guard case .int64List(let uid)? = s.context?["uid"] else { return XCTFail("record \(i) uid") }
      XCTAssertEqual(String(uid[0]), expected["context"]!["uid"]!.stringValue)
      // FixedLenSequence([], int64): one value per step; a missing list is a zero-length sequence.
      let items = s.featureLists?.featureList["item"]?.feature ?? []
      let flat: [String] = items.flatMap { f -> [String] in
        if case .int64List(let v) = f { return v.map(String.init) } else { return [] }
      }
      XCTAssertEqual(flat, expected["item"]!.arrayValue!.map { $0.stringValue! }, "record \(i)")
      let scores = (s.featureLists?.featureList["score"]?.feature ?? []).map { f -> [Float] in
        if case .floatList(let v) = f { return v } else { return [] }
      }
      XCTAssertEqual(scores, expected["score"]!.arrayValue!.map { $0.arrayValue!.map { $0.floatValue! } }, "record \(i)")
      // VarLen(string) per step: TF's sparse values are the steps' values in order.
      let tags = (s.featureLists?.featureList["tags"]?.feature ?? []).flatMap { f -> [String] in
        if case .bytesList(let v) = f { return v.map { Base64.encode($0) } } else { return [] }
      }
      XCTAssertEqual(tags, expected["tags"]!["values"]!.arrayValue!.map { $0["b64"]!.stringValue! }, "record \(i)")
    }
  }

  func testWireVariantsKeepEveryValueWhereTensorFlowsParserTruncates() throws {
    let expected = try Fixture.jsonLines("examples_wire_variants.expected.jsonl")
    let dicts = try Fixture.jsonLines("examples_wire_variants.message_to_dict.jsonl")
    let records = try readAll(Fixture.path("examples_wire_variants.tfrecord"))
    XCTAssertEqual(records.count, expected.count)
    for (i, (payload, golden)) in zip(records, expected).enumerated() {
      let example = try Example(serialized: payload)
      // Our decode equals Python protobuf's (which keeps all values), not TF's truncating parser.
      for (name, g) in golden["python_protobuf_decode"]!.objectMembers! {
        XCTAssertEqual(goldenDescription(example.features![name]!), goldenDescription(g),
                       "\(golden["name"]!.stringValue!) feature \(name)")
      }
      XCTAssertTrue(jsonEqualIgnoringOrder(example.canonicalJSON, dicts[i]), "variant \(i)")
      // Our writer emits one packed chunk per list, which TF's parser reads completely.
      let rewritten = example.serialized()
      XCTAssertEqual(try Example(serialized: rewritten), example)
      XCTAssertEqual(rewritten.count <= payload.count, true, "re-encoding packs lists")
    }
  }
}
