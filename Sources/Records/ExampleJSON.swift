/// Base64 (RFC 4648), as protobuf's JSON mapping uses for bytes fields.
public enum Base64 {
  static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
  static let decodeTable: [Int8] = {
    var t = [Int8](repeating: -1, count: 256)
    for (i, c) in alphabet.enumerated() { t[Int(c)] = Int8(i) }
    t[Int(UInt8(ascii: "-"))] = 62  // URL-safe alphabet, which protobuf's parser also accepts
    t[Int(UInt8(ascii: "_"))] = 63
    return t
  }()

  /// Standard alphabet with padding.
  public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var out = [UInt8]()
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var it = bytes.makeIterator()
    while let a = it.next() {
      let b = it.next(), c = it.next()
      let n = UInt32(a) << 16 | UInt32(b ?? 0) << 8 | UInt32(c ?? 0)
      out.append(alphabet[Int(n >> 18 & 63)])
      out.append(alphabet[Int(n >> 12 & 63)])
      out.append(b == nil ? UInt8(ascii: "=") : alphabet[Int(n >> 6 & 63)])
      out.append(c == nil ? UInt8(ascii: "=") : alphabet[Int(n & 63)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// Accepts the standard and URL-safe alphabets, with or without padding; nil if malformed.
  public static func decode(_ text: String) -> [UInt8]? {
    var out = [UInt8]()
    var acc: UInt32 = 0, bits = 0
    var padding = 0
    for c in text.utf8 {
      if c == UInt8(ascii: "=") { padding += 1; continue }
      if padding > 0 { return nil }
      let v = decodeTable[Int(c)]
      if v < 0 { return nil }
      acc = acc << 6 | UInt32(v)
      bits += 6
      if bits >= 8 {
        bits -= 8
        out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
      }
    }
    if bits >= 6 || padding > 2 { return nil }
    return out
  }
}

/// A JSON value that does not fit the Example schema, with the path of the offending field.
public struct ExampleJSONError: Error, CustomStringConvertible, Sendable {
  public var path: String
  public var message: String
  public var description: String { "\(path): \(message)" }
}

// MARK: - To JSON (protobuf canonical mapping, `preserving_proto_field_name=True`)

extension Feature {
  /// `{"int64_list": {"value": ["1"]}}` etc.; empty lists print as `{}`, as protobuf omits empty repeated fields.
  public var canonicalJSON: JSONValue {
    func list(_ values: [JSONValue]) -> JSONValue { values.isEmpty ? .object([]) : .object([("value", .array(values))]) }
    switch self {
    case .bytesList(let v): return .object([("bytes_list", list(v.map { .string(Base64.encode($0)) }))])
    case .int64List(let v): return .object([("int64_list", list(v.map { .string(String($0)) }))])
    case .floatList(let v): return .object([("float_list", list(v.map(Self.floatJSON)))])
    case .unset: return .object([])
    }
  }

  static func floatJSON(_ f: Float) -> JSONValue {
    if f.isNaN { return .string("NaN") }
    if f.isInfinite { return .string(f < 0 ? "-Infinity" : "Infinity") }
    return .number(PythonFloatFormat.format(f))
  }
}

extension Features {
  /// `{"feature": {...}}` with keys sorted (map order is not part of the protobuf contract).
  public var canonicalJSON: JSONValue {
    if feature.isEmpty { return .object([]) }
    return .object([("feature", .object(feature.keys.sorted().map { ($0, feature[$0]!.canonicalJSON) }))])
  }
}

extension Example {
  public var canonicalJSON: JSONValue {
    guard let features else { return .object([]) }
    return .object([("features", features.canonicalJSON)])
  }
}

extension SequenceExample {
  public var canonicalJSON: JSONValue {
    var members: [(String, JSONValue)] = []
    if let context { members.append(("context", context.canonicalJSON)) }
    if let featureLists {
      let lists = featureLists.featureList
      let inner: JSONValue = lists.isEmpty ? .object([]) : .object([("feature_list", .object(lists.keys.sorted().map { key in
        let steps = lists[key]!.feature
        return (key, steps.isEmpty ? JSONValue.object([]) : .object([("feature", .array(steps.map(\.canonicalJSON)))]))
      }))])
      members.append(("feature_lists", inner))
    }
    return .object(members)
  }
}

// MARK: - From JSON (what protobuf's `ParseDict` accepts)

struct JSONReader {
  static func object(_ v: JSONValue, _ path: String, allowed: [String]) throws -> [(String, JSONValue)] {
    guard case .object(let members) = v else {
      throw ExampleJSONError(path: path, message: "expected an object, found \(v.typeName)")
    }
    for (k, _) in members where !allowed.contains(k) {
      throw ExampleJSONError(path: path, message: "unknown field '\(k)' (expected \(allowed.map { "'\($0)'" }.joined(separator: " or ")))")
    }
    return members
  }

  /// The value of a field spelled either way (`int64_list` or its JSON name `int64List`), null meaning absent.
  static func field(_ members: [(String, JSONValue)], _ names: String...) -> JSONValue? {
    let v = members.last(where: { names.contains($0.0) })?.1
    if case .null? = v { return nil }
    return v
  }

  /// A feature or feature list name. libprotobuf-c, which encodes the messages, keeps names as
  /// C strings and would silently cut one at a NUL, so such a name is refused here.
  static func name(_ name: String, _ path: String) throws -> String {
    guard !name.utf8.contains(0) else {
      throw ExampleJSONError(path: path, message: "the name \(JSONWriter.serialize(.string(name))) contains U+0000, "
                               + "which libprotobuf-c cannot encode (it would end the name there)")
    }
    return name
  }

  static func values(_ v: JSONValue?, _ path: String) throws -> [JSONValue] {
    guard let v else { return [] }
    let m = try object(v, path, allowed: ["value"])
    guard let list = field(m, "value") else { return [] }
    guard case .array(let items) = list else {
      throw ExampleJSONError(path: path + ".value", message: "expected an array, found \(list.typeName)")
    }
    return items
  }

  static func int64(_ v: JSONValue, _ path: String) throws -> Int64 {
    switch v {
    case .string(let s), .number(let s):
      if let i = Int64(s) { return i }
      if case .number = v, let d = Double(s), d == d.rounded(), let i = Int64(exactly: d) { return i }
      throw ExampleJSONError(path: path, message: "'\(s)' is not an int64")
    default:
      throw ExampleJSONError(path: path, message: "expected an int64 (string or number), found \(v.typeName)")
    }
  }

  static func float(_ v: JSONValue, _ path: String) throws -> Float {
    switch v {
    case .string(let s), .number(let s):
      switch s {
      case "NaN": return .nan
      case "Infinity": return .infinity
      case "-Infinity": return -.infinity
      default: break
      }
      guard let d = Double(s), d.isFinite else { throw ExampleJSONError(path: path, message: "'\(s)' is not a number") }
      guard let f = Float(s), f.isFinite else {
        throw ExampleJSONError(path: path, message: "\(s) is outside the float32 range")
      }
      return f
    default:
      throw ExampleJSONError(path: path, message: "expected a number, found \(v.typeName)")
    }
  }

  static func bytes(_ v: JSONValue, _ path: String) throws -> [UInt8] {
    guard case .string(let s) = v else {
      throw ExampleJSONError(path: path, message: "expected a base64 string, found \(v.typeName)")
    }
    guard let b = Base64.decode(s) else { throw ExampleJSONError(path: path, message: "'\(s)' is not valid base64") }
    return b
  }
}

extension Feature {
  /// Parses `{"int64_list": {"value": [...]}}` and its JSON-name spellings.
  public init(canonicalJSON v: JSONValue, path: String = "feature") throws {
    let m = try JSONReader.object(v, path, allowed: ["bytes_list", "bytesList", "float_list", "floatList", "int64_list", "int64List"])
    let kinds = m.filter { if case .null = $0.1 { return false } else { return true } }
    let canonicalNames: [String: String] = ["bytesList": "bytes_list", "floatList": "float_list", "int64List": "int64_list"]
    if Set(kinds.map { canonicalNames[$0.0] ?? $0.0 }).count > 1 {
      throw ExampleJSONError(path: path, message: "more than one of bytes_list, float_list, int64_list is set (they are a oneof)")
    }
    if let b = JSONReader.field(m, "bytes_list", "bytesList") {
      let p = path + ".bytes_list"
      self = .bytesList(try JSONReader.values(b, p).enumerated().map { try JSONReader.bytes($1, "\(p).value[\($0)]") })
    } else if let f = JSONReader.field(m, "float_list", "floatList") {
      let p = path + ".float_list"
      self = .floatList(try JSONReader.values(f, p).enumerated().map { try JSONReader.float($1, "\(p).value[\($0)]") })
    } else if let i = JSONReader.field(m, "int64_list", "int64List") {
      let p = path + ".int64_list"
      self = .int64List(try JSONReader.values(i, p).enumerated().map { try JSONReader.int64($1, "\(p).value[\($0)]") })
    } else {
      self = .unset
    }
  }
}

extension Features {
  public init(canonicalJSON v: JSONValue, path: String = "features") throws {
    let m = try JSONReader.object(v, path, allowed: ["feature"])
    var map: [String: Feature] = [:]
    if let f = JSONReader.field(m, "feature") {
      guard case .object(let entries) = f else {
        throw ExampleJSONError(path: path + ".feature", message: "expected an object, found \(f.typeName)")
      }
      for (name, value) in entries {
        map[try JSONReader.name(name, "\(path).feature")] = try Feature(canonicalJSON: value, path: "\(path).feature.\(name)")
      }
    }
    feature = map
  }
}

extension Example {
  public init(canonicalJSON v: JSONValue) throws {
    let m = try JSONReader.object(v, "example", allowed: ["features"])
    features = try JSONReader.field(m, "features").map { try Features(canonicalJSON: $0) }
  }
}

extension SequenceExample {
  public init(canonicalJSON v: JSONValue) throws {
    let m = try JSONReader.object(v, "sequence_example", allowed: ["context", "feature_lists", "featureLists"])
    context = try JSONReader.field(m, "context").map { try Features(canonicalJSON: $0, path: "context") }
    featureLists = try JSONReader.field(m, "feature_lists", "featureLists").map { lists in
      let p = "feature_lists"
      let lm = try JSONReader.object(lists, p, allowed: ["feature_list", "featureList"])
      var map: [String: FeatureList] = [:]
      if let fl = JSONReader.field(lm, "feature_list", "featureList") {
        guard case .object(let entries) = fl else {
          throw ExampleJSONError(path: p + ".feature_list", message: "expected an object, found \(fl.typeName)")
        }
        for (name, value) in entries {
          let ep = "\(p).feature_list.\(name)"
          let em = try JSONReader.object(value, ep, allowed: ["feature"])
          var steps: [Feature] = []
          if let arr = JSONReader.field(em, "feature") {
            guard case .array(let items) = arr else {
              throw ExampleJSONError(path: ep + ".feature", message: "expected an array, found \(arr.typeName)")
            }
            steps = try items.enumerated().map { try Feature(canonicalJSON: $1, path: "\(ep).feature[\($0)]") }
          }
          map[try JSONReader.name(name, p + ".feature_list")] = FeatureList(steps)
        }
      }
      return FeatureLists(map)
    }
  }
}
