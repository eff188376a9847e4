import Foundation
import XCTest
@testable import Features
import Records

/// TSV/CSV -> TFRecord -> TSV/CSV gives the input back, row for row, on real data read in place
/// from ../shared/data and on generated data.
final class ConvertRoundTripTests: XCTestCase {
  func assertSameLines(_ back: String, _ original: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    let a = back.components(separatedBy: "\n"), b = original.components(separatedBy: "\n")
    XCTAssertEqual(a.count, b.count, "\(what): line count", file: file, line: line)
    if let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
      XCTFail("\(what): line \(i + 1) differs:\n  got      \(a[i])\n  expected \(b[i])", file: file, line: line)
    }
  }

  func testRealCriteoRowsRoundTripThroughTFRecordExactly() throws {
    let dir = ScratchDirectory()
    let inputs = try ["train", "dev", "test"].map { try ConvertSharedData.path("criteo/wide-resdnn_criteo_\($0).tsv") }
    let out = dir.file("criteo")
    let result = try ConvertTest.run(inputs, .criteo, into: out, chunkBytes: 64 << 10) { $0.sharding = .shards(5) }
    XCTAssertEqual(result.manifest.inputs.map(\.rows), [7200, 409, 391])
    XCTAssertEqual(result.manifest.records, 8000)
    let examples = try ConvertTest.examples(out)
    // Missing values are absent features, never zero or "" (checked against the file's own first row).
    let firstRow = try XCTUnwrap(ConvertTest.lines(inputs[0]).first).split(separator: "\t", omittingEmptySubsequences: false)
    let first = examples[0].features!.feature
    for (i, name) in ConvertSchema.criteo.columns.map(\.name).enumerated() {
      let text = firstRow[i]
      if text.isEmpty { XCTAssertNil(first[name], name); continue }
      XCTAssertEqual(first[name], i < 14 ? .int64List([Int64(text)!]) : .bytesList([Array(text.utf8)]), name)
    }
    XCTAssertTrue(firstRow.contains(""), "the first row has a missing value")
    let back = try ConvertTest.text(examples, DelimitedExampleFormatter(schema: .criteo, csv: false))
    let original = try inputs.map { try String(contentsOfFile: $0, encoding: .utf8) }.joined()
    assertSameLines(back, original, "criteo")
  }

  func testRealAvazuCSVRoundTripsWithAnInferredSchemaAndWithoutHeaders() throws {
    let dir = ScratchDirectory()
    let train = try ConvertSharedData.path("avazu/wide-resdnn_avazu_train.csv")
    let out = dir.file("train")
    let result = try ConvertTest.run([train], .csv, into: out, chunkBytes: 64 << 10)
    let report = try XCTUnwrap(result.inference)
    let types = Dictionary(uniqueKeysWithValues: report.columns.map { ($0.name, $0.type) })
    XCTAssertEqual(types["id"], .bytes, "20-digit ids exceed int64 and float32: kept as text")
    XCTAssertEqual(types["click"], .int64)
    XCTAssertEqual(types["site_id"], .bytes)
    XCTAssertEqual(types["C14"], .int64)
    XCTAssertEqual(result.manifest.records, 8087)
    let formatter = DelimitedExampleFormatter(schema: result.manifest.schema, csv: true)
    let back = String(decoding: try formatter.header(), as: UTF8.self) + (try ConvertTest.text(try ConvertTest.examples(out), formatter))
    assertSameLines(back, try String(contentsOfFile: train, encoding: .utf8), "avazu train")

    // dev and test have the same columns and no header: reuse the inferred schema.
    var schema = result.manifest.schema
    schema.header = false
    let headerless = try ["dev", "test"].map { try ConvertSharedData.path("avazu/wide-resdnn_avazu_\($0).csv") }
    let out2 = dir.file("devtest")
    let r2 = try ConvertTest.run(headerless, .csv, into: out2, schema: schema)
    XCTAssertEqual(r2.manifest.inputs.map(\.rows), [480, 432])
    let back2 = try ConvertTest.text(try ConvertTest.examples(out2), formatter)
    assertSameLines(back2, try headerless.map { try String(contentsOfFile: $0, encoding: .utf8) }.joined(), "avazu dev+test")
  }

  func testGeneratedCriteoLayoutRowsRoundTrip() throws {
    let dir = ScratchDirectory()
    let input = dir.file("synth.tsv")
    _ = try CriteoSynth(seed: 11).generate(rows: 3000, output: input, threads: 2)
    let out = dir.file("out")
    try ConvertTest.run([input], .criteo, into: out, chunkBytes: 32 << 10) { $0.sharding = .maxBytes(200 << 10) }
    XCTAssertGreaterThan(try ConvertTest.shardPaths(out).count, 2)
    let back = try ConvertTest.text(try ConvertTest.examples(out), DelimitedExampleFormatter(schema: .criteo, csv: false))
    assertSameLines(back, try String(contentsOfFile: input, encoding: .utf8), "synthetic criteo")
  }

  func testBehaviourSequenceTSVWithListColumnsRoundTrips() throws {
    // Per-user histories built from the real Amazon Grocery interactions (read in place; the
    // derived TSV lives in a temporary directory only).
    let source = try ConvertSharedData.path("sequences/rechorus_amazon_grocery_train.tsv")
    let rows = try ConvertTest.lines(source).dropFirst().prefix(20_000).map { $0.split(separator: "\t").map(String.init) }
    var order: [String] = []
    var items: [String: [String]] = [:], times: [String: [String]] = [:]
    for r in rows {
      if items[r[0]] == nil { order.append(r[0]) }
      items[r[0], default: []].append(r[1])
      times[r[0], default: []].append(r[2])
    }
    var text = ""
    for user in order {
      let h = items[user]!, t = times[user]!
      // label, user, target item, history before it (may be empty = absent), its times
      text += "\(Int(user)! & 1)\t\(user)\t\(h.last!)\t\(h.dropLast().joined(separator: ","))\t\(t.dropLast().joined(separator: "|"))\n"
    }
    let dir = ScratchDirectory()
    let input = dir.write("histories.tsv", text)
    let schema = try ConvertSchema.parse("""
      header: false
      label: label
      columns:
        - {name: label, type: int64}
        - {name: user_id, type: bytes}
        - {name: item_id, type: int64}
        - {name: hist_item_id, type: int64, separator: ","}
        - {name: hist_time, type: int64, separator: "|"}
      """)
    let out = dir.file("out")
    let r = try ConvertTest.run([input], .tsv, into: out, schema: schema, chunkBytes: 16 << 10) { $0.sharding = .shards(3) }
    XCTAssertEqual(r.manifest.records, order.count)
    let examples = try ConvertTest.examples(out)
    XCTAssertTrue(examples.contains { ($0.features!.feature["hist_item_id"]?.count ?? 0) > 5 }, "long histories are lists")
    XCTAssertTrue(examples.contains { $0.features!.feature["hist_item_id"] == nil }, "an empty history is absent")
    let back = try ConvertTest.text(examples, DelimitedExampleFormatter(schema: schema, csv: false))
    assertSameLines(back, text, "histories")
  }

  func testTaobaoCSVWithACaretSeparatedClickSequenceRoundTrips() throws {
    let input = try ConvertSharedData.path("sequences/fuxictr_taobao_tiny_train.csv")
    let dir = ScratchDirectory()
    let (inferred, _) = try SchemaInference.inferDelimited(path: input, format: .csv)
    var schema = inferred
    let seq = try XCTUnwrap(schema.columns.firstIndex { $0.name == "click_sequence" })
    schema.columns[seq] = ConvertColumn("click_sequence", .int64, separator: "^")
    schema.label = "clk"
    XCTAssertEqual(schema.columns.first { $0.name == "price" }?.type, .float)
    let out = dir.file("out")
    try ConvertTest.run([input], .csv, into: out, schema: schema)
    let examples = try ConvertTest.examples(out)
    let firstSequence = try XCTUnwrap(ConvertTest.lines(input).dropFirst().first?.split(separator: ",").last)
    XCTAssertEqual(examples[0].features!.feature["click_sequence"],
                   .int64List(firstSequence.split(separator: "^").map { Int64($0)! }))
    XCTAssertTrue(examples.contains { ($0.features!.feature["click_sequence"]?.count ?? 0) > 1 })
    let formatter = DelimitedExampleFormatter(schema: schema, csv: true)
    let back = String(decoding: try formatter.header(), as: UTF8.self) + (try ConvertTest.text(examples, formatter))
    assertSameLines(back, try String(contentsOfFile: input, encoding: .utf8), "taobao")
  }
}
