import Foundation
import Records

/// Emits block-style YAML for configs: encoded with Codable's JSONEncoder, then laid out as
/// mappings and sequences with scalar lists in flow style. Strings are always double-quoted
/// (JSON escaping is valid YAML), so values like `no`, `1.0` or `null` cannot change type.
/// Yams' Codable encoder is quadratic in list length, which a fitted vocabulary makes costly.
public enum YAMLWriter {
  /// `amend` may add members to the encoded tree before layout (large lists built directly,
  /// rather than through JSONEncoder, which dominates the cost of writing a fitted vocabulary).
  public static func yaml<T: Encodable>(_ value: T, amend: (JSONValue) -> JSONValue = { $0 }) throws -> String {
    let encoder = JSONEncoder()
    // Sorted, because JSONEncoder's key order is otherwise that of a hash table, different on
    // every run; `ordered` then puts the identifying keys first.
    encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
    let json = ordered(amend(try JSONParser.parse(Array(try encoder.encode(value)))))
    var out = ""
    emit(json, indent: 0, into: &out)
    return out
  }

  /// Keys written first in every mapping, in this order (a column reads "name, type, ..."); the
  /// rest follow alphabetically, so the same config always gives the same bytes.
  static let leadingKeys = ["fitted", "name", "type", "dtype", "label", "weight", "group", "columns", "crosses"]

  static func ordered(_ v: JSONValue) -> JSONValue {
    switch v {
    case .object(let members):
      let rank = { (k: String) in leadingKeys.firstIndex(of: k) ?? leadingKeys.count }
      let sorted = members.enumerated().sorted { a, b in
        let (ra, rb) = (rank(a.element.0), rank(b.element.0))
        return ra != rb ? ra < rb : a.offset < b.offset
      }
      return .object(sorted.map { ($0.element.0, ordered($0.element.1)) })
    case .array(let items):
      return items.allSatisfy(isScalar) ? v : .array(items.map(ordered))
    default:
      return v
    }
  }

  static func isScalar(_ v: JSONValue) -> Bool {
    switch v {
    case .object, .array: return false
    default: return true
    }
  }

  static func scalar(_ v: JSONValue) -> String {
    switch v {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let n): return n
    case .string(let s): return quoted(s)
    default: return ""
    }
  }

  /// JSON's quoting, plus `\u` escapes for what libyaml does not take raw (`escapingRawInvalid`).
  static func quoted(_ s: String) -> String {
    escapingRawInvalid(JSONWriter.serialize(.string(s)))
  }

  /// JSON text with `\u` escapes for what libyaml does not take raw inside double quotes: DEL,
  /// the C1 controls, U+FEFF, U+FFFE and U+FFFF (it rejects the file) and NEL, LS and PS (it
  /// reads them as line breaks and folds them into a space). Such characters can only be in the
  /// text's strings, where the escape means the same in JSON.
  static func escapingRawInvalid(_ json: String) -> String {
    guard json.utf8.contains(where: mayStartRawInvalid), json.unicodeScalars.contains(where: rawInvalid) else { return json }
    var out = ""
    for u in json.unicodeScalars {
      if rawInvalid(u) {
        let hex = String(u.value, radix: 16, uppercase: true)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      } else {
        out.unicodeScalars.append(u)
      }
    }
    return out
  }

  /// Whether libyaml does not take `u` raw inside double quotes.
  static func rawInvalid(_ u: Unicode.Scalar) -> Bool {
    let v = u.value
    return (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029 || v == 0xFEFF || v == 0xFFFE || v == 0xFFFF
  }

  /// Whether a UTF-8 byte can start a `rawInvalid` character (7F, C2, E2, EF): a byte test that
  /// clears most strings without decoding them.
  static func mayStartRawInvalid(_ b: UInt8) -> Bool { b == 0x7F || b == 0xC2 || b == 0xE2 || b == 0xEF }

  static func key(_ k: String) -> String {
    let plain = k.first.map { $0.isLetter || $0 == "_" } ?? false && k.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    return plain ? k : quoted(k)
  }

  /// A list of scalars in flow style, wrapped so lines stay readable. Written as bytes: appending
  /// each item to a String line took 0.2 s for the 900k entries of the 2M-row benchmark's
  /// vocabulary (perf, ctrkit train's start).
  static func flow(_ items: [JSONValue], indent: Int, into out: inout String) {
    if items.isEmpty { out += "[]\n"; return }
    var w = JSONWriter()
    w.output.append(UInt8(ascii: "["))
    var lineStart = 0
    for (i, item) in items.enumerated() {
      if i > 0 { w.output.append(contentsOf: [UInt8(ascii: ","), UInt8(ascii: " ")]) }
      let itemStart = w.output.count
      switch item {
      case .string(let s):
        w.string(s)
        // The rare item with a character libyaml does not take raw is escaped again.
        if w.output[itemStart...].contains(where: mayStartRawInvalid) {
          w.output.removeSubrange(itemStart...)
          w.output.append(contentsOf: quoted(s).utf8)
        }
      default:
        w.output.append(contentsOf: scalar(item).utf8)
      }
      // Wrap before an item that would take the line past 100 bytes: the line keeps its ", ", and
      // the next one starts indented.
      if i > 0 && w.output.count - lineStart > 100 {
        w.output.insert(contentsOf: [UInt8(ascii: "\n")] + repeatElement(UInt8(ascii: " "), count: indent + 2), at: itemStart)
        lineStart = itemStart + 1
      }
    }
    w.output.append(contentsOf: [UInt8(ascii: "]"), UInt8(ascii: "\n")])
    out += String(decoding: w.output, as: UTF8.self)
  }

  static func emit(_ v: JSONValue, indent: Int, into out: inout String) {
    let pad = String(repeating: " ", count: indent)
    switch v {
    case .object(let members):
      if members.isEmpty { out += pad + "{}\n"; return }
      for (k, value) in members {
        out += pad + key(k) + ":"
        emitValue(value, indent: indent, into: &out)
      }
    case .array(let items):
      for item in items {
        if case .object(let members) = item, !members.isEmpty {
          // "- " then the mapping's first pair, the rest aligned under it.
          var first = true
          for (k, value) in members {
            out += (first ? pad + "- " : pad + "  ") + key(k) + ":"
            emitValue(value, indent: indent + 2, into: &out)
            first = false
          }
        } else {
          out += pad + "-"
          emitValue(item, indent: indent + 2, into: &out)
        }
      }
    default:
      out += pad + scalar(v) + "\n"
    }
  }

  /// The value after "key:" (or "-"): inline when small, nested otherwise.
  static func emitValue(_ value: JSONValue, indent: Int, into out: inout String) {
    switch value {
    case .array(let items) where items.allSatisfy(isScalar):
      out += " "
      flow(items, indent: indent, into: &out)
    case .array(let items) where items.isEmpty:
      out += " []\n"
    case .object(let m) where m.isEmpty:
      out += " {}\n"
    case .object, .array:
      out += "\n"
      emit(value, indent: indent + 2, into: &out)
    default:
      out += " " + scalar(value) + "\n"
    }
  }
}
