import Foundation
import XCTest
@testable import Features
import Records

final class ConvertDelimitedTests: XCTestCase {
  let csvSchema = ConvertSchema(columns: [
    ConvertColumn("id", .int64), ConvertColumn("text", .bytes), ConvertColumn("score", .float),
  ], header: true)

  func feature(_ e: Example, _ name: String) -> Feature? { e.features?.feature[name] }

  func testQuotedCSVFieldsKeepDelimitersQuotesNewlinesCRLFAndUTF8() throws {
    let dir = ScratchDirectory()
    // A byte order mark, CRLF line ends, a field with a comma, doubled quotes, an embedded CRLF
    // and LF, multi-byte UTF-8, an explicit empty string, and an absent value.
    let text = "\u{FEFF}id,text,score\r\n"
      + "1,\"a, b\",0.5\r\n"
      + "2,\"she said \"\"hi\"\"\",1.5\r\n"
      + "3,\"line one\r\nline two\nline three\",2\r\n"
      + "4,日本語 ünïcödé 🙂,\r\n"
      + "5,\"\",3\r\n"
      + "6,,4\n"
      + "7,plain,5"  // no final line break
    let input = dir.write("in.csv", text)
    for chunk in [64, 80, 128, 4096] {
      let out = dir.file("out-\(chunk)")
      let result = try ConvertTest.run([input], .csv, into: out, schema: csvSchema, chunkBytes: chunk)
      let ex = try ConvertTest.examples(out)
      XCTAssertEqual(ex.count, 7, "chunk \(chunk)")
      XCTAssertEqual(result.manifest.inputs[0].rows, 7)
      XCTAssertEqual(feature(ex[0], "text"), .bytesList([Array("a, b".utf8)]))
      XCTAssertEqual(feature(ex[1], "text"), .bytesList([Array("she said \"hi\"".utf8)]))
      XCTAssertEqual(feature(ex[2], "text"), .bytesList([Array("line one\r\nline two\nline three".utf8)]))
      XCTAssertEqual(feature(ex[2], "score"), .floatList([2]))
      XCTAssertEqual(feature(ex[3], "text"), .bytesList([Array("日本語 ünïcödé 🙂".utf8)]))
      XCTAssertNil(feature(ex[3], "score"), "an empty field is an absent feature")
      XCTAssertEqual(feature(ex[4], "text"), .bytesList([[]]), "\"\" is an empty string")
      XCTAssertNil(feature(ex[5], "text"))
      XCTAssertEqual(feature(ex[6], "id"), .int64List([7]))
      XCTAssertEqual(feature(ex[0], "id"), .int64List([1]), "the BOM is not part of the header")
    }
  }

  func testRecordBoundariesAgreeWithAWholeFileParseAtEveryChunkSize() throws {
    let dir = ScratchDirectory()
    var rng = SplitMix64(seed: 3)
    var text = "id,text,score\n"
    let pieces = ["x", ",", "\"", "\n", "\r\n", "é", "ab", " "]
    for i in 0..<120 {
      var value = ""
      for _ in 0..<Int.random(in: 0...12, using: &rng) { value += pieces.randomElement(using: &rng)! }
      let quoted = "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
      text += "\(i),\(quoted),\(Double(i) / 4)\n"
    }
    let input = dir.write("in.csv", text)
    let reference = try ConvertTest.payloads({ try ConvertTest.run([input], .csv, into: dir.file("ref"), schema: csvSchema, chunkBytes: 1 << 20); return dir.file("ref") }())
    XCTAssertEqual(reference.count, 120)
    for chunk in [64, 97, 256, 1000] {
      let out = dir.file("out-\(chunk)")
      try ConvertTest.run([input], .csv, into: out, schema: csvSchema, chunkBytes: chunk)
      XCTAssertEqual(try ConvertTest.payloads(out), reference, "chunk \(chunk)")
    }
  }

  func testScannerCountsRecordsAndLineFeedsOutsideQuotes() {
    let text = Array("a,\"x\ny\"\nb,c\n\"unterminated\n".utf8)
    text.withUnsafeBufferPointer { b in
      let cut = DelimitedScanner.lastBoundary(b.baseAddress!, count: b.count, delimiter: UInt8(ascii: ","), quote: UInt8(ascii: "\""))
      XCTAssertEqual(cut.records, 2)
      XCTAssertEqual(cut.lineFeeds, 3)
      XCTAssertEqual(cut.boundary, 12)
    }
    let plain = Array(String(repeating: "ab\tc\n", count: 37).utf8) + Array("tail".utf8)
    plain.withUnsafeBufferPointer { b in
      XCTAssertEqual(DelimitedScanner.countLineFeeds(b.baseAddress!, b.count), 37)
      let cut = DelimitedScanner.lastBoundary(b.baseAddress!, count: b.count, delimiter: 0x09, quote: nil)
      XCTAssertEqual(cut.boundary, 37 * 5)
      XCTAssertEqual(cut.records, 37)
    }
  }

  func testListColumnsSplitAtTheirSeparatorAndRejectEmptyValues() throws {
    let dir = ScratchDirectory()
    let schema = ConvertSchema(columns: [
      ConvertColumn("label", .int64), ConvertColumn("hist", .int64, separator: "^"),
      ConvertColumn("cats", .bytes, separator: ","),
    ], label: "label", header: false)
    let input = dir.write("seq.tsv", "1\t3^14^15\ta,b\n0\t\tc\n1\t9^^2\td\n0\t7\t\n")
    let out = dir.file("out")
    let result = try ConvertTest.run([input], .tsv, into: out, schema: schema) { $0.maxErrors = 1 }
    let ex = try ConvertTest.examples(out)
    XCTAssertEqual(ex.count, 3)
    XCTAssertEqual(feature(ex[0], "hist"), .int64List([3, 14, 15]))
    XCTAssertEqual(feature(ex[0], "cats"), .bytesList([[UInt8(ascii: "a")], [UInt8(ascii: "b")]]))
    XCTAssertNil(feature(ex[1], "hist"))
    XCTAssertEqual(feature(ex[2], "hist"), .int64List([7]))
    XCTAssertEqual(result.manifest.rejectedRows, 1)
    let rejects = try ConvertTest.lines(out + "/rejects.tsv")
    XCTAssertEqual(rejects.count, 2)
    XCTAssertTrue(rejects[1].hasPrefix("\(input)\t3\tcolumn 'hist': empty value at position 2"), rejects[1])
  }

  func testJSONLinesTypesKeysListsAndNulls() throws {
    let dir = ScratchDirectory()
    let schema = ConvertSchema(columns: [
      ConvertColumn("click", .int64), ConvertColumn("user", .bytes), ConvertColumn("hist", .int64, list: true),
      ConvertColumn("price", .float), ConvertColumn("big", .int64),
    ], label: "click")
    let input = dir.write("in.jsonl", """
      {"click": 1, "user": "u1", "hist": [1, 2, 3], "price": 3.9, "big": 9223372036854775807}
      {"click": 0, "user": 42, "hist": null, "price": null}

      {"user": "u3", "click": true, "hist": [], "big": "-5"}
      {"click": 1, "user": "u4", "extra": 1}
      {"click": 1, "hist": 5}
      {"click": 1, "hist": [1, "x"]}
      not json

      """)
    let out = dir.file("out")
    let r = try ConvertTest.run([input], .jsonl, into: out, schema: schema) { $0.maxErrors = 3 }
    let ex = try ConvertTest.examples(out)
    XCTAssertEqual(ex.count, 4)
    XCTAssertEqual(feature(ex[0], "hist"), .int64List([1, 2, 3]))
    XCTAssertEqual(feature(ex[0], "price"), .floatList([3.9]))
    XCTAssertEqual(feature(ex[0], "big"), .int64List([.max]), "int64 never goes through a Double")
    XCTAssertEqual(feature(ex[1], "user"), .bytesList([Array("42".utf8)]), "a number in a bytes column keeps its text")
    XCTAssertNil(feature(ex[1], "hist"))
    XCTAssertEqual(feature(ex[2], "click"), .int64List([1]))
    XCTAssertEqual(feature(ex[2], "hist"), .int64List([]), "an empty array is an empty list")
    XCTAssertEqual(feature(ex[2], "big"), .int64List([-5]))
    XCTAssertEqual(feature(ex[3], "hist"), .int64List([5]))
    XCTAssertEqual(r.manifest.inputs[0].blankLines, 1)
    let rejects = try ConvertTest.lines(out + "/rejects.tsv").dropFirst().map { $0.split(separator: "\t").map(String.init) }
    XCTAssertEqual(rejects.map { $0[1] }, ["5", "7", "8"])
    XCTAssertEqual(rejects[0][2], "key 'extra' is not a column of the schema")
    XCTAssertTrue(rejects[1][2].contains("'x' is not an int64"), rejects[1][2])
    XCTAssertTrue(rejects[2][2].hasPrefix("invalid JSON"), rejects[2][2])
  }

  func testNumbersAreCheckedNotRepaired() throws {
    let dir = ScratchDirectory()
    let schema = ConvertSchema(columns: [ConvertColumn("i", .int64), ConvertColumn("f", .float)], header: false)
    let input = dir.write("in.tsv", "1\t2.5\n260.0\t1\n99999999999999999999\t1\n3\t1e39\n4\tabc\n-7\t-inf\n+8\t16777217\n")
    let out = dir.file("out")
    let r = try ConvertTest.run([input], .tsv, into: out, schema: schema) { $0.maxErrors = 10 }
    let ex = try ConvertTest.examples(out)
    XCTAssertEqual(ex.map { feature($0, "i") }, [.int64List([1]), .int64List([-7]), .int64List([8])])
    XCTAssertEqual(feature(ex[1], "f"), .floatList([-.infinity]))
    let reasons = try ConvertTest.lines(out + "/rejects.tsv").dropFirst().map { $0.split(separator: "\t")[2] }
    XCTAssertEqual(reasons, ["column 'i': '260.0' is not an int64", "column 'i': '99999999999999999999' is not an int64",
                             "column 'f': '1e39' is not a float32 number", "column 'f': 'abc' is not a float32 number"])
    XCTAssertEqual(r.manifest.floatValuesRounded, ["f": 1], "16777217 is stored as 16777216, and the manifest says so")
  }
}
