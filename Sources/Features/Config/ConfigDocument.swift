import Foundation
import Yams

/// A config problem, located by file, line and key path (`columns[3].hash_bucket_size`).
public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public var file: String
  public var line: Int?
  public var column: Int?
  public var key: String
  public var message: String

  public init(file: String, line: Int? = nil, column: Int? = nil, key: String, _ message: String) {
    self.file = file
    self.line = line
    self.column = column
    self.key = key
    self.message = message
  }

  public var description: String {
    var location = file
    if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
    return key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
  }
}

/// One step of a path into a config document.
public enum ConfigPath: Hashable, Sendable, CustomStringConvertible {
  case key(String)
  case index(Int)

  public var description: String {
    switch self {
    case .key(let k): return k
    case .index(let i): return "[\(i)]"
    }
  }

  static func render(_ path: [ConfigPath]) -> String {
    var s = ""
    for p in path {
      switch p {
      case .key(let k): s += s.isEmpty ? k : "." + k
      case .index(let i): s += "[\(i)]"
      }
    }
    return s
  }
}

/// A parsed YAML or JSON config file that keeps every node's position, so errors found while
/// decoding or validating can name the line. JSON is read by the same YAML 1.2 parser.
public struct ConfigDocument {
  public let file: String
  public let root: Node
  /// The columns' long lists, when they were read from the text rather than composed (then
  /// `root` holds empty lists in their place; `FeatureConfig` reads them from here).
  let flowLists: FlowLists

  public init(file: String, text: String) throws {
    try self.init(file: file, text: text, readingListsDirectly: true)
  }

  /// `readingListsDirectly` false composes every node (tests compare the two readings).
  init(file: String, text: String, readingListsDirectly: Bool) throws {
    self.file = file
    if readingListsDirectly, let (slim, lists) = FlowLists.extract(text),
       let node = try? Yams.compose(yaml: slim), lists.allClaimed(by: node) {
      root = node
      flowLists = lists
      return
    }
    flowLists = FlowLists()
    do {
      guard let node = try Yams.compose(yaml: text) else {
        throw ConfigError(file: file, line: 1, key: "", "the file is empty")
      }
      root = node
    } catch let e as YamlError {
      throw Self.syntaxError(file: file, e)
    }
  }

  public init(path: String) throws {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigError(file: path, key: "", "cannot read the file (missing or unreadable)")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw ConfigError(file: path, key: "", "the file is not valid UTF-8")
    }
    try self.init(file: path, text: text)
  }

  static func syntaxError(file: String, _ e: YamlError) -> ConfigError {
    switch e {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
      let ctx = context.map { "\($0.text) " } ?? ""
      return ConfigError(file: file, line: mark.line, column: mark.column, key: "", "syntax error: \(ctx)\(problem)")
    default:
      return ConfigError(file: file, key: "", "syntax error: \(e)")
    }
  }

  /// The values of a column list that was read from the text, by its (empty) node in `root`.
  func listRead(_ node: Node) -> FlowLists.Values? {
    guard !flowLists.lists.isEmpty, let s = node.sequence, s.isEmpty, let m = s.mark else { return nil }
    return flowLists.lists[FlowLists.Position(line: m.line, column: m.column)]
  }

  /// The node at `path`, if present.
  public func node(at path: [ConfigPath]) -> Node? {
    var n: Node? = root
    for p in path {
      guard let cur = n else { return nil }
      switch p {
      case .key(let k): n = cur.mapping?[k]
      case .index(let i):
        guard let seq = cur.sequence, i >= 0, i < seq.count else { return nil }
        n = seq[i]
      }
    }
    return n
  }

  /// The deepest existing node along `path`: where an error about it is best shown.
  public func mark(for path: [ConfigPath]) -> Mark? {
    var p = path
    while true {
      if let n = node(at: p), let m = n.mark {
        // For a key, point at the key itself rather than its value.
        if case .key(let k)? = p.last, let parent = node(at: Array(p.dropLast()))?.mapping,
           let keyNode = parent.keys.first(where: { $0.string == k }), let km = keyNode.mark {
          return km
        }
        return m
      }
      if p.isEmpty { return nil }
      p.removeLast()
    }
  }

  public func error(_ path: [ConfigPath], _ message: String) -> ConfigError {
    let m = mark(for: path)
    return ConfigError(file: file, line: m?.line, column: m?.column, key: ConfigPath.render(path), message)
  }

  /// Decodes `T` from the node at `path`, turning decoding errors into located config errors.
  public func decode<T: Decodable>(_ type: T.Type, at path: [ConfigPath] = []) throws -> T {
    guard let n = node(at: path) else { throw error(path, "missing") }
    do {
      return try YAMLDecoder().decode(type, from: n)
    } catch let e as DecodingError {
      throw locate(e, base: path)
    }
  }

  private func locate(_ e: DecodingError, base: [ConfigPath]) -> ConfigError {
    func path(_ keys: [CodingKey]) -> [ConfigPath] {
      base + keys.map { k in k.intValue.map { ConfigPath.index($0) } ?? .key(k.stringValue) }
    }
    switch e {
    case .keyNotFound(let key, let ctx):
      return error(path(ctx.codingPath), "the required key '\(key.stringValue)' is missing")
    case .valueNotFound(_, let ctx):
      return error(path(ctx.codingPath), "a value is required here")
    case .typeMismatch(let type, let ctx):
      let found = node(at: path(ctx.codingPath)).map(describe) ?? "nothing"
      return error(path(ctx.codingPath), "expected \(friendlyName(type)), found \(found)")
    case .dataCorrupted(let ctx):
      let p = path(ctx.codingPath)
      let found = node(at: p).map(describe) ?? "nothing"
      if case .key(let k)? = p.last, let allowed = Self.allowedValues[k] {
        return error(p, "\(found) is not one of \(allowed.joined(separator: ", "))")
      }
      return error(p, "invalid value \(found): \(ctx.debugDescription)")
    @unknown default:
      return error(base, "\(e)")
    }
  }

  static let allowedValues: [String: [String]] = [
    "type": ColumnType.allCases.map(\.rawValue),
    "id_type": [ColumnType.hashBucket, .vocabulary, .identity].map(\.rawValue),
    "dtype": ["string", "int64", "float"],
    "normalizer": ["none", "zscore", "log1p", "minmax", "criteo"],
    "output": ["ids", "indicator"],
    "combiner": EmbeddingCombiner.allCases.map(\.rawValue),
  ]

  private func describe(_ n: Node) -> String {
    switch n {
    case .scalar(let s): return "'\(s.string)'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
  }

  private func friendlyName(_ t: Any.Type) -> String {
    let s = String(describing: t)
    if s.hasPrefix("Int") || s.hasPrefix("UInt") { return "an integer" }
    if s == "Double" || s == "Float" { return "a number" }
    if s == "String" { return "a string" }
    if s == "Bool" { return "true or false" }
    if s.hasPrefix("Array") { return "a list" }
    return "a \(s)"
  }

  /// Rejects keys not in `allowed` in the mapping at `path`, so typos do not pass silently.
  public func checkKeys(at path: [ConfigPath], allowed: [String]) throws {
    guard let mapping = node(at: path)?.mapping else { return }
    for key in mapping.keys {
      guard let name = key.string else { continue }
      if !allowed.contains(name) {
        let suggestion = allowed.min { editDistance($0, name) < editDistance($1, name) }
        let hint = suggestion.flatMap { editDistance($0, name) <= 3 ? " (did you mean '\($0)'?)" : nil } ?? ""
        throw ConfigError(file: file, line: key.mark?.line, column: key.mark?.column,
                          key: ConfigPath.render(path + [.key(name)]), "unknown key\(hint)")
      }
    }
  }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
  let x = Array(a), y = Array(b)
  if x.isEmpty { return y.count }
  var row = Array(0...y.count)
  for i in 1...x.count {
    var prev = row[0]
    row[0] = i
    for j in 1...max(y.count, 1) where j <= y.count {
      let cur = row[j]
      row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[y.count]
}
