import Foundation
import XCTest
@testable import Features
import Records

final class ConvertRejectsTests: XCTestCase {
  let schema = ConvertSchema(columns: [
    ConvertColumn("label", .int64), ConvertColumn("n", .int64), ConvertColumn("note", .bytes),
  ], label: "label", header: true)

  /// A CSV whose rows span several lines, with bad rows at known lines.
  let text = """
    label,n,note
    1,10,ok
    0,x,bad number
    1,30,"two
    lines"
    1,40,"tab\there"
    ,50,no label
    0,60
    1,70,"closing"quote
    1,80,last

    """

  func testBadRowsLandInTheRejectsFileWithFileLineAndReason() throws {
    let dir = ScratchDirectory()
    let input = dir.write("in.csv", text)
    let out = dir.file("out")
    let r = try ConvertTest.run([input], .csv, into: out, schema: schema, chunkBytes: 64) { $0.maxErrors = 4 }
    XCTAssertEqual(r.manifest.rejectedRows, 4)
    XCTAssertEqual(r.manifest.inputs[0].rows, 4)
    XCTAssertEqual(r.manifest.inputs[0].rejected, 4)
    XCTAssertEqual(try ConvertTest.examples(out).map { $0.features!.feature["n"] },
                   [.int64List([10]), .int64List([30]), .int64List([40]), .int64List([80])])
    XCTAssertEqual(try ConvertTest.lines(out + "/rejects.tsv"), [
      "file\tline\treason\trow",
      "\(input)\t3\tcolumn 'n': 'x' is not an int64\t0,x,bad number",
      "\(input)\t7\tcolumn 'label': the label is empty\t,50,no label",
      "\(input)\t8\texpected 3 fields, found 2\t0,60",
      "\(input)\t9\tunexpected 'q' after the closing quote of column 3\t1,70,\"closing\"quote",
    ])
  }

  func testRejectedRowsWithTabsAndLineBreaksStayOneEscapedLine() throws {
    let dir = ScratchDirectory()
    let input = dir.write("in.csv", "label,n,note\n1,\"x\ny\",\"a\tb\\\\c\"\n")
    let out = dir.file("out")
    try ConvertTest.run([input], .csv, into: out, schema: schema) { $0.maxErrors = 1 }
    XCTAssertEqual(try ConvertTest.lines(out + "/rejects.tsv").last,
                   "\(input)\t2\tcolumn 'n': 'x\\\\ny' is not an int64\t1,\"x\\ny\",\"a\\tb\\\\\\\\c\"")
  }

  func testMoreRejectsThanMaxErrorsFailsAndLeavesNothingThatLooksFinished() throws {
    let dir = ScratchDirectory()
    // Many good rows first, so shards are finished before the bad rows arrive.
    var lines = ["label,n,note"]
    for i in 0..<3000 { lines.append("1,\(i),row \(i)") }
    lines.append("1,bad,one")
    lines.append("1,bad,two")
    for i in 0..<100 { lines.append("0,\(i),tail") }
    let input = dir.write("in.csv", lines.joined(separator: "\n") + "\n")
    let out = dir.file("out")
    XCTAssertThrowsError(try ConvertTest.run([input], .csv, into: out, schema: schema, chunkBytes: 2048) {
      $0.maxErrors = 1
      $0.sharding = .maxBytes(8 << 10)
    }) { e in
      guard let error = e as? ConvertError else { return XCTFail("\(e)") }
      XCTAssertEqual(error.kind, .tooManyRejects)
      XCTAssertEqual(error.path, input)
      XCTAssertEqual(error.line, 3002)
      XCTAssertTrue(error.message.contains("--max-errors 1"), error.message)
      XCTAssertTrue(error.message.contains("rejects.tsv"), error.message)
    }
    let left = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    XCTAssertEqual(left, ["rejects.tsv"], "no shard, partial file or manifest survives; the rejects explain why")
    XCTAssertEqual(try ConvertTest.lines(out + "/rejects.tsv").count, 3)
    // Allowing the two bad rows makes the same job succeed.
    let ok = try ConvertTest.run([input], .csv, into: out, schema: schema, chunkBytes: 2048) {
      $0.maxErrors = 2
      $0.sharding = .maxBytes(8 << 10)
    }
    XCTAssertEqual(ok.manifest.records, 3100)
  }

  func testMissingInputAndBadSchemaErrorsNameTheFileAndKey() throws {
    let dir = ScratchDirectory()
    XCTAssertThrowsError(try ConvertTest.run([dir.file("nope.tsv")], .criteo, into: dir.file("out"))) { e in
      XCTAssertEqual((e as? ConvertError)?.kind, .input)
      XCTAssertTrue("\(e)".hasPrefix(dir.file("nope.tsv")), "\(e)")
    }
    let cases: [(String, String)] = [
      ("columns:\n  - {name: a, type: int}\n", "'columns[0].type': 'int' is not one of int64, float, bytes"),
      ("columns:\n  - {name: a, type: int64, sep: ','}\n", "'columns[0].sep': unknown key"),
      ("columns:\n  - {name: a, type: int64}\n  - {name: a, type: bytes}\n", "'columns[1].name': 'a' is also the name of columns[0]"),
      ("label: y\ncolumns:\n  - {name: a, type: int64}\n", "'label': 'y' is not one of the columns"),
      ("label: a\ncolumns:\n  - {name: a, type: bytes}\n", "'label': 'a' is a bytes column"),
      ("colums: []\n", "'colums': unknown key"),
      ("delimiter: ';;'\ncolumns:\n  - {name: a, type: int64}\n", "'delimiter': ';;' is not one ASCII character"),
      ("columns:\n  - {name: a, type: int64, separator: ','}\ndelimiter: ','\n", "'columns[0].separator': the list separator equals the field delimiter"),
    ]
    for (yaml, expected) in cases {
      let path = dir.write("schema.yaml", yaml)
      XCTAssertThrowsError(try ConvertSchema.load(path: path)) { e in
        XCTAssertEqual((e as? ConvertError)?.kind, .schema)
        XCTAssertTrue("\(e)".contains(expected), "\(e) should contain \(expected)")
        XCTAssertTrue("\(e)".hasPrefix(path), "\(e)")
      }
    }
    // JSON is read too, and a valid schema survives its YAML rendering.
    let json = dir.write("schema.json", #"{"label": "y", "header": false, "columns": [{"name": "y", "type": "float"}, {"name": "h", "type": "bytes", "separator": "|"}, {"name": "z", "type": "int64", "drop": true}]}"#)
    let s = try ConvertSchema.load(path: json)
    XCTAssertEqual(s.columns[1].separator, "|")
    XCTAssertEqual(try ConvertSchema.parse(s.yaml), s)
    XCTAssertEqual(try ConvertSchema.parse(ConvertSchema.criteo.yaml), .criteo)
  }

  func testHeaderThatDisagreesWithTheSchemaIsAnErrorNamingTheColumn() throws {
    let dir = ScratchDirectory()
    let input = dir.write("in.csv", "label,count,note\n1,2,x\n")
    XCTAssertThrowsError(try ConvertTest.run([input], .csv, into: dir.file("out"), schema: schema)) { e in
      XCTAssertEqual("\(e)", "\(input):1: column 'n': the header names column 2 'count', the schema 'n'")
    }
  }
}
