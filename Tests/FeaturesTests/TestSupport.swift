@_exported import TestSupport  // the shared helpers, visible in every file of this target
import Features
import Foundation
import Records
import XCTest

/// Golden files copied from ../shared/compat (computed by TensorFlow 2.21 / Keras 3.15).
enum Fixture {
  static func url(_ name: String) -> URL {
    Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
  }
  static func path(_ name: String) -> String { url(name).path }
  static func data(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: url(name))) }
  static func jsonLines(_ name: String) throws -> [JSONValue] {
    try String(decoding: data(name), as: UTF8.self).split(separator: "\n").map { try JSONParser.parse(String($0)) }
  }
  static func json(_ name: String) throws -> JSONValue { try JSONParser.parse(data(name)) }
}



/// A failure naming the golden field that could not be read, so a malformed fixture does not
/// pass silently.
struct GoldenFormatError: Error, CustomStringConvertible {
  var description: String
}

extension JSONValue {
  var string: String? { if case .string(let s) = self { return s } else { return nil } }
  var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
  var objectMembers: [(String, JSONValue)]? { if case .object(let m) = self { return m } else { return nil } }
  var isNull: Bool { if case .null = self { return true } else { return false } }
  /// A JSON number or decimal string as Int64 (the goldens write int64 as strings).
  var int64: Int64? {
    switch self {
    case .number(let s), .string(let s): return Int64(s)
    default: return nil
    }
  }
  var uint64: UInt64? {
    switch self {
    case .number(let s), .string(let s): return UInt64(s)
    default: return nil
    }
  }
  /// A JSON number, or one of the spellings the goldens use for non-finite values.
  var double: Double? {
    switch self {
    case .number(let s), .string(let s): return Double(s)
    default: return nil
    }
  }
  /// A float32 given as 8 hex digits of its IEEE-754 bits, the authoritative form in the goldens.
  var float32FromBits: Float? { string.flatMap { UInt32($0, radix: 16) }.map(Float.init(bitPattern:)) }

  /// `{"b64": ..., "utf8": ...}` as bytes.
  var goldenBytes: [UInt8]? { self["b64"]?.string.flatMap(Base64.decode) }

  func required<T>(_ key: String, _ read: (JSONValue) -> T?) throws -> T {
    guard let v = self[key], let t = read(v) else { throw GoldenFormatError(description: "golden field '\(key)' missing or malformed") }
    return t
  }
}

func hexBits(_ f: Float) -> String {
  let s = String(f.bitPattern, radix: 16)
  return String(repeating: "0", count: 8 - s.count) + s
}

extension TFHash {
  /// Test convenience over the raw-buffer API.
  static func hashBucketFast(_ bytes: [UInt8], buckets: Int64) -> Int64 {
    bytes.withUnsafeBytes { hashBucketFast($0, buckets: buckets) }
  }
}
