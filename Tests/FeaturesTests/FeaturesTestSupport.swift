import Foundation
import XCTest
@testable import Features
import Records

/// Fixtures of the Features tests (TensorFlow goldens copied from ../shared/compat).
enum FeatureFixtures {
  static func path(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!.path
  }
  static func json(_ name: String) throws -> JSONValue {
    try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path(name)))))
  }
}

extension ScratchDirectory {
  /// Writes examples to a TFRecord file and returns its path.
  func tfrecord(_ name: String, _ examples: [Example], compression: Compression = .none) throws -> String {
    let w = try TFRecordWriter(path: file(name), compression: compression)
    for e in examples { try w.write(e.serialized()) }
    try w.close()
    return file(name)
  }
}


/// Parses and transforms examples with a config in one call.
func transformExamples(_ config: FeatureConfig, _ examples: [Example]) throws -> (Transformer, FeatureBatch) {
  let t = try Transformer(config: config)
  let parsed = ParsedBatch(spec: t.spec)
  try ExampleParser(spec: t.spec).parse(examples.map { $0.serialized() }, into: parsed)
  let batch = t.makeBatch()
  try t.transform(parsed, into: batch)
  return (t, batch)
}

/// Loads a config from YAML text.
func loadConfig(_ yaml: String, file: String = "test.yaml") throws -> FeatureConfig {
  try FeatureConfig.load(ConfigDocument(file: file, text: yaml), at: [])
}

extension JSONValue {
  var asArray: [JSONValue] { if case .array(let a) = self { return a } else { return [] } }
  var asString: String? { if case .string(let s) = self { return s } else { return nil } }
  var asDouble: Double? {
    switch self {
    case .number(let s), .string(let s): return Double(s)
    default: return nil
    }
  }
  var asInt64: Int64? {
    switch self {
    case .number(let s), .string(let s): return Int64(s)
    default: return nil
    }
  }
}

/// Record r's ids in sparse column `name`.
func ids(_ batch: FeatureBatch, _ name: String, _ r: Int) -> [Int64] {
  let s = batch.sparse(batch.layout.sparseIndex(name)!)
  return Array(s.ids[s.offsets[r]..<s.offsets[r + 1]])
}
