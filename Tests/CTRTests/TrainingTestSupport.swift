import Foundation
import XCTest
import Features
import Records
@testable import CTR

extension ScratchDirectory {
  /// Writes examples to a TFRecord file and returns its path.
  @discardableResult
  func records(_ name: String, _ examples: [Example]) throws -> String {
    let w = try TFRecordWriter(path: file(name))
    for e in examples { try w.write(e.serialized()) }
    try w.close()
    return file(name)
  }

  /// Writes an experiment YAML and loads it the way `ctrkit train` does.
  func experiment(_ yaml: String, name: String = "experiment.yaml") throws -> ExperimentConfig {
    try ExperimentConfig.load(path: write(name, yaml))
  }
}

// MARK: - Building examples

func bytesFeature(_ values: String...) -> Feature { .bytesList(values.map { Array($0.utf8) }) }
func bytesFeature(_ values: [String]) -> Feature { .bytesList(values.map { Array($0.utf8) }) }
func floatFeature(_ values: Float...) -> Feature { .floatList(values) }
func int64Feature(_ values: Int64...) -> Feature { .int64List(values) }

/// Parses and transforms `examples` into a resolved batch of `model` (creating rows, as training
/// does), with `model`'s own transformer settings.
func resolvedBatch(_ model: CTRModel, _ transformer: Transformer, _ examples: [Example]) throws -> ResolvedBatch {
  let parsed = ParsedBatch(spec: transformer.spec)
  try ExampleParser(spec: transformer.spec).parse(examples.map { $0.serialized() }, into: parsed)
  let batch = ResolvedBatch(model: model)
  try transformer.transform(parsed, into: batch.features)
  Resolver(model: model).resolve(batch, create: true)
  return batch
}

// MARK: - Comparing trained models

/// Every parameter and every optimizer-state float of a model, as bytes: each table's checkpoint
/// (rows in creation order with ids, weights and state), then the dense values and state.
/// Two models with equal snapshots are bit-for-bit the same model.
struct ParameterSnapshot: Equatable {
  var tables: [String: [UInt8]]
  var dense: [UInt32]
  var denseState: [UInt32]

  init(_ model: CTRModel) {
    var t: [String: [UInt8]] = [:]
    for table in model.tables { t[table.name] = table.table.checkpoint() }
    tables = t
    dense = (0..<model.dense.count).map { model.dense.values.data[$0].bitPattern }
    if let adam = model.dense.adam, let mv = adam.moments(of: model.dense.parameter) {
      denseState = (0..<model.dense.count).map { mv.m.data[$0].bitPattern } + (0..<model.dense.count).map { mv.v.data[$0].bitPattern }
        + [UInt32(truncatingIfNeeded: adam.step)]
    } else if model.dense.adam != nil {
      denseState = []
    } else {
      denseState = (0..<model.dense.stateWidth).map { model.dense.state[$0].bitPattern }
    }
  }

  /// Loads a checkpoint file into a fresh model of `experiment` and snapshots it.
  static func load(_ path: String, experiment: ExperimentConfig) throws -> (ParameterSnapshot, TrainingState) {
    let transformer = try Transformer(config: experiment.features, baseDirectory: experiment.baseDirectory)
    let model = try CTRModel(experiment: experiment, layout: transformer.layout)
    let state = try ModelStore.load(path, into: model)
    return (ParameterSnapshot(model), state)
  }
}

/// Bytes of a file (empty if it is missing).
func fileBytes(_ path: String) -> [UInt8] { FileManager.default.contents(atPath: path).map(Array.init) ?? [] }

// MARK: - Synthetic click data

/// A learnable click task: the click probability depends on the ad and the user segment (and a
/// little on a numeric feature), so a model of the categorical ids can rank well above chance.
enum SyntheticClicks {
  static let features = """
    label: label
    group: user
    columns:
      - {name: ad, type: hash_bucket, hash_bucket_size: 100}
      - {name: segment, type: hash_bucket, hash_bucket_size: 100}
      - {name: user, type: hash_bucket, hash_bucket_size: 1000}
      - {name: x, type: numeric}
    """

  /// `features`, indented to sit under an experiment config's `features:` key.
  static var nestedFeatures: String {
    features.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n")
  }

  /// Examples `n` drawn with `seed`.
  static func examples(_ n: Int, seed: UInt64) -> [Example] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in
      let ad = Int(rng.next() % 12)
      let segment = Int(rng.next() % 4)
      let user = Int(rng.next() % 50)
      let x = rng.float(0, 1)
      // Ads 0–3 click far more often; segment 0 clicks more, segment 3 less.
      var score: Float = ad < 4 ? 1.2 : -1.2
      score += segment == 0 ? 0.8 : segment == 3 ? -0.8 : 0
      score += 0.5 * (x - 0.5)
      let p = 1 / (1 + expf(-score))
      let label: Int64 = rng.float(0, 1) < p ? 1 : 0
      return Example([
        "label": .int64List([label]), "ad": bytesFeature("ad\(ad)"), "segment": bytesFeature("s\(segment)"),
        "user": bytesFeature("u\(user)"), "x": .floatList([x]),
      ])
    }
  }
}
