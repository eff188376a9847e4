import Foundation
import Records

extension FeatureConfig {
  /// The config as YAML (what `ctrkit analyze` writes).
  public func yamlText() throws -> String {
    let (stripped, restore) = withoutLongLists()
    return "# Fitted by ctrkit analyze: self-contained (vocabularies, boundaries and statistics inline).\n"
      + (try YAMLWriter.yaml(stripped, amend: restore))
  }

  /// The config without its columns' vocabularies and frequencies, and the function that adds
  /// them back to its encoded tree (a `.object` with `columns`), under the same keys. They are
  /// most of a fitted config's bytes, and JSONEncoder took most of the time writing them.
  public func withoutLongLists() -> (FeatureConfig, restore: (JSONValue) -> JSONValue) {
    var stripped = self
    var lists: [Int: [(String, JSONValue)]] = [:]
    for (i, c) in columns.enumerated() {
      var extra: [(String, JSONValue)] = []
      if let v = c.vocabulary {
        extra.append(("vocabulary", .array(v.map { .string($0) })))
        stripped.columns[i].vocabulary = nil
      }
      if let f = c.frequencies {
        extra.append(("frequencies", .array(f.map { .number(String($0)) })))
        stripped.columns[i].frequencies = nil
      }
      if !extra.isEmpty { lists[i] = extra }
    }
    return (stripped, { tree in
      guard !lists.isEmpty, case .object(var top) = tree,
            let k = top.firstIndex(where: { $0.0 == "columns" }), case .array(var cols) = top[k].1 else { return tree }
      for (i, extra) in lists where i < cols.count {
        guard case .object(let members) = cols[i] else { continue }
        // JSONEncoder's .sortedKeys order, which plain `<` reproduces for these snake_case keys.
        cols[i] = .object((members + extra).sorted { $0.0 < $1.0 })
      }
      top[k].1 = .array(cols)
      return .object(top)
    })
  }

  /// Writes the config atomically, as YAML, or JSON for a `.json` path.
  public func write(to path: String) throws {
    let text: String
    if path.hasSuffix(".json") {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      // (Read back by the same YAML parser, which takes fewer characters raw than JSON.)
      text = YAMLWriter.escapingRawInvalid(String(decoding: try encoder.encode(self), as: UTF8.self)) + "\n"
    } else {
      text = try yamlText()
    }
    try writeFileAtomically(Array(text.utf8), to: path)
  }
}

/// Writes a file under a temporary name and renames it, so it is never seen half-written.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
  let sink = try AtomicFileSink(path: path)
  try bytes.withUnsafeBytes { try sink.write($0) }
  try sink.finish()
}
