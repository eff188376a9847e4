@_exported import TestSupport  // the shared helpers, visible in every file of this target
import Foundation
import XCTest
@testable import Records

/// Fixture files copied from ../shared/compat (written by TensorFlow 2.21) and computed by us.
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



/// JSON equality where object member order does not matter (protobuf map order is not part of
/// the contract) but number text must match exactly.
func jsonEqualIgnoringOrder(_ a: JSONValue, _ b: JSONValue) -> Bool {
  switch (a, b) {
  case (.object(let x), .object(let y)):
    guard x.count == y.count else { return false }
    let dy = Dictionary(y, uniquingKeysWith: { $1 })
    return x.allSatisfy { k, v in dy[k].map { jsonEqualIgnoringOrder(v, $0) } ?? false }
  case (.array(let x), .array(let y)):
    return x.count == y.count && zip(x, y).allSatisfy(jsonEqualIgnoringOrder)
  default:
    return a == b
  }
}

/// Reads every record payload of a file.
func readAll(_ path: String, compression: Compression = .auto, options: ReaderOptions = ReaderOptions(),
             inflater: Inflater = .default) throws -> [[UInt8]] {
  let r = try TFRecordReader(path: path, compression: compression, options: options, inflater: inflater)
  var out: [[UInt8]] = []
  while let rec = try r.next() { out.append(Array(rec.data)) }
  return out
}

func hexBits(_ f: Float) -> String {
  let s = String(f.bitPattern, radix: 16)
  return String(repeating: "0", count: 8 - s.count) + s
}

/// The feature as the golden sidecars describe it: kind plus int64 strings, float bits or base64.
func goldenDescription(_ f: Feature) -> JSONValue {
  switch f {
  case .int64List(let v): return .object([("kind", .string("int64_list")), ("value", .array(v.map { .string(String($0)) }))])
  case .floatList(let v): return .object([("kind", .string("float_list")), ("bits", .array(v.map { .string(hexBits($0)) }))])
  case .bytesList(let v): return .object([("kind", .string("bytes_list")), ("value", .array(v.map { .string(Base64.encode($0)) }))])
  case .unset: return .object([("kind", .string("unset"))])
  }
}

/// The same description built from a golden sidecar entry.
func goldenDescription(_ j: JSONValue) -> JSONValue {
  guard case .string(let kind)? = j["kind"] else { return .object([("kind", .string("unset"))]) }
  switch kind {
  case "float_list": return .object([("kind", .string(kind)), ("bits", j["bits"] ?? .array([]))])
  case "bytes_list":
    guard case .array(let items)? = j["value"] else { return .null }
    return .object([("kind", .string(kind)), ("value", .array(items.map { $0["b64"] ?? .null }))])
  case "int64_list": return .object([("kind", .string(kind)), ("value", j["value"] ?? .array([]))])
  default: return .object([("kind", .string("unset"))])
  }
}

extension JSONValue {
  var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
  var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
  var intValue: Int? {
    switch self {
    case .number(let s), .string(let s): return Int(s)
    default: return nil
    }
  }
  var floatValue: Float? {
    switch self {
    case .number(let s), .string(let s): return Float(s)
    default: return nil
    }
  }
  var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  var objectMembers: [(String, JSONValue)]? { if case .object(let m) = self { return m } else { return nil } }
}
