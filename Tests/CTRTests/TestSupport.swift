@_exported import TestSupport  // the shared helpers, visible in every file of this target
import Foundation
import XCTest
import Records
@testable import CTR

/// Fixture files computed by the scripts in Tests/tools (TensorFlow 2.21, PyTorch).
enum Fixture {
  static func url(_ name: String) -> URL {
    Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
  }
  static func data(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: url(name))) }
  static func json(_ name: String) throws -> JSONValue { try JSONParser.parse(data(name)) }
}


extension JSONValue {
  var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
  var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
  var doubleValue: Double? {
    switch self {
    case .number(let s), .string(let s): return Double(s)
    default: return nil
    }
  }
  /// A float32 written by Python as the float64 repr of a float32: parsing as Float gives its bits.
  var floatValue: Float? {
    switch self {
    case .number(let s), .string(let s): return Float(s)
    default: return nil
    }
  }
  var floats: [Float] { arrayValue!.map { $0.floatValue! } }
  var ints: [Int64] { arrayValue!.map { Int64($0.doubleValue!) } }
  var isNull: Bool { if case .null = self { return true } else { return false } }
}

/// Distance between two floats in units in the last place of the larger magnitude.
func ulpDistance(_ a: Float, _ b: Float) -> Float {
  if a == b { return 0 }
  let scale = Swift.max(Swift.abs(a), Swift.abs(b)).ulp
  return Swift.abs(a - b) / scale
}

/// Asserts `|actual − expected| ≤ atol + rtol·|expected|` elementwise, naming the first failure.
func assertClose(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
  XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
  for i in 0..<Swift.min(actual.count, expected.count) {
    let err = Swift.abs(actual[i] - expected[i])
    if !(err <= atol + rtol * Swift.abs(expected[i])) {
      XCTFail("\(what)[\(i)]: got \(actual[i]), expected \(expected[i]) (error \(err), tolerance \(atol) + \(rtol)·|expected|)",
              file: file, line: line)
      return
    }
  }
}

func assertClose(_ actual: [Float], _ expected: [Double], rtol: Double, atol: Double, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
  assertClose(actual.map(Double.init), expected, rtol: rtol, atol: atol, what, file: file, line: line)
}

extension Matrix {
  var doubles: [Double] { array.map(Double.init) }
  static func random(_ rows: Int, _ cols: Int, _ rng: inout SplitMix64, _ low: Float = -1, _ high: Float = 1) -> Matrix {
    Matrix(rows: rows, cols: cols, data: rng.floats(rows * cols, low, high))
  }
}
