import Foundation
import XCTest
import Features
import Records
@testable import CTR

final class ModelStoreTests: XCTestCase {
  /// A model directory's experiment.yaml carries the fitted vocabularies and frequencies: written
  /// with them split from the rest (JSONEncoder is slow on them), its bytes are those of the whole
  /// experiment encoded at once, and it reads back equal.
  func testTheExperimentFileKeepsVocabulariesAndReadsBackEqual() throws {
    let scratch = ScratchDirectory()
    var e = try scratch.experiment("""
      features:
        label: {name: label, dtype: int64}
        columns:
          - {name: ad, type: vocabulary, top_k: 5, num_oov_buckets: 1}
          - {name: user, type: hash_bucket, hash_bucket_size: 7}
          - {name: segment, type: vocabulary, top_k: 3, num_oov_buckets: 1}
      model: {type: lr}
      """)
    e.features.columns[0].vocabulary = ["ad1", "ad\u{85}2", "ad3"]
    e.features.columns[0].frequencies = [9, 5, 2]
    e.features.columns[2].vocabulary = ["s0"]
    e.features.fitted = true
    try ModelStore.writeExperiment(e, to: scratch.file("model"))
    let text = try String(contentsOfFile: ModelStore.experimentPath(scratch.file("model")), encoding: .utf8)
    let whole = try YAMLWriter.yaml(SavedExperiment(features: e.features, model: e.model, optimizers: e.optimizers, training: e.training))
    XCTAssertEqual(text, "# Written by ctrkit train: the experiment with its fitted features inline.\n" + whole)
    let back = try ModelStore.readExperiment(scratch.file("model"))
    XCTAssertEqual(back.features, e.features)
    XCTAssertEqual(back.model, e.model)
    XCTAssertEqual(back.training, e.training)
  }
}
