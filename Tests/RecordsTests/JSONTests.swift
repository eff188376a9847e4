import XCTest
@testable import Records

final class JSONTests: XCTestCase {
  func testFloatsPrintAsPythonsJsonFormatPrintsThem() {
    let cases: [(Float, String)] = [
      (0, "0.0"), (-0.0, "-0.0"), (1, "1.0"), (0.1, "0.1"), (1.5, "1.5"), (100_000_000, "100000000.0"),
      (1e16, "1e+16"), (1.5e-5, "1.5e-05"), (0.0001, "0.0001"), (123_456.79, "123456.79"),
      (Float.greatestFiniteMagnitude, "3.4028235e+38"), (1.1754944e-38, "1.1754944e-38"),
      (Float(bitPattern: 1), "1.4013e-45"), (-2.25, "-2.25"), (16_777_216, "16777216.0"),
    ]
    for (f, text) in cases { XCTAssertEqual(PythonFloatFormat.format(f), text, "\(f.bitPattern)") }
    XCTAssertEqual(Feature.floatJSON(.nan), .string("NaN"))
    XCTAssertEqual(Feature.floatJSON(-.infinity), .string("-Infinity"))
  }

  func testTheParserKeepsNumberTextAndReportsLineAndColumn() throws {
    XCTAssertEqual(try JSONParser.parse("[9223372036854775807, 1.10, -0]"),
                   .array([.number("9223372036854775807"), .number("1.10"), .number("-0")]))
    XCTAssertEqual(try JSONParser.parse(#"{"a": "\u00e9\ud83d\ude00\n"}"#)["a"], .string("é😀\n"))
    XCTAssertThrowsError(try JSONParser.parse("{\n  \"a\": [1,\n  2,,3]}")) { error in
      let e = error as! JSONSyntaxError
      XCTAssertEqual(e.line, 3)
      XCTAssertEqual(e.column, 5)
    }
    for bad in ["", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "[", "tru", "\"\u{01}\"", "1 2"] {
      XCTAssertThrowsError(try JSONParser.parse(bad), bad)
    }
  }

  func testExampleJSONErrorsNameTheFieldPath() {
    let cases: [(String, String)] = [
      (#"{"features": {"feature": {"x": {"int64_list": {"value": ["1.5"]}}}}}"#, "features.feature.x.int64_list.value[0]"),
      (#"{"features": {"feature": {"x": {"float_list": {"value": [1e39]}}}}}"#, "features.feature.x.float_list.value[0]"),
      (#"{"features": {"feature": {"x": {"bytes_list": {"value": ["***"]}}}}}"#, "features.feature.x.bytes_list.value[0]"),
      (#"{"features": {"feature": {"x": {"int64_list": {}, "float_list": {}}}}}"#, "features.feature.x"),
      (#"{"feature": {}}"#, "example"),
      // libprotobuf-c would end the name at the NUL and write "f".
      (#"{"features": {"feature": {"f\u0000x": {"int64_list": {"value": ["1"]}}}}}"#, "features.feature"),
    ]
    for (text, path) in cases {
      XCTAssertThrowsError(try Example(canonicalJSON: JSONParser.parse(text)), text) { error in
        XCTAssertEqual((error as? ExampleJSONError)?.path, path, "\(error)")
      }
    }
    let sequence = #"{"feature_lists": {"feature_list": {"s\u0000": {"feature": []}}}}"#
    XCTAssertThrowsError(try SequenceExample(canonicalJSON: JSONParser.parse(sequence))) { error in
      XCTAssertEqual((error as? ExampleJSONError)?.path, "feature_lists.feature_list", "\(error)")
      XCTAssertTrue("\(error)".contains(#""s\u0000""#), "\(error)")
    }
  }

  func testJSONNamesAndSpecialFloatStringsAreAccepted() throws {
    let e = try Example(canonicalJSON: JSONParser.parse(
      #"{"features": {"feature": {"a": {"floatList": {"value": ["NaN", "-Infinity", 2]}}, "b": {"int64List": {"value": [3, "-4"]}}, "c": {"bytes_list": {"value": ["_-8="]}}}}}"#))
    guard case .floatList(let f)? = e.features?["a"] else { return XCTFail() }
    XCTAssertTrue(f[0].isNaN)
    XCTAssertEqual(f[1], -.infinity)
    XCTAssertEqual(e.features?["b"], .int64List([3, -4]))
    XCTAssertEqual(e.features?["c"], .bytesList([[0xff, 0xef]]))
  }

  func testBase64RoundTripsAndRejectsGarbage() {
    var rng = SplitMix64(seed: 9)
    for n in 0..<50 {
      let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
      XCTAssertEqual(Base64.decode(Base64.encode(bytes)), bytes)
    }
    XCTAssertEqual(Base64.encode(Array("Man".utf8)), "TWFu")
    XCTAssertEqual(Base64.encode(Array("Ma".utf8)), "TWE=")
    XCTAssertNil(Base64.decode("TW=u"))
    XCTAssertNil(Base64.decode("T"))
  }
}
