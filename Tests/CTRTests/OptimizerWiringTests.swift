import Foundation
import XCTest
import Features
import Records
@testable import CTR

/// The trainer's updates reach the optimizers with the right gradients: one FTRL step on one
/// example equals TensorFlow's FTRL formula (MODELS.md §4.2) derived here by hand on the summed
/// per-example gradient, and an id repeated within a batch gets one step with its gradients
/// summed (TensorFlow deduplicates IndexedSlices before `sparse_apply_ftrl`).
final class OptimizerWiringTests: XCTestCase {
  static let experimentYAML = """
    features:
      label: label
      weight: w
      columns:
        - {name: c1, type: hash_bucket, hash_bucket_size: 1000}
        - {name: wcat, type: hash_bucket, hash_bucket_size: 1000, weight_feature: wcat_w}
        - {name: tags, type: hash_bucket, hash_bucket_size: 1000}
        - {name: n1, type: numeric}
    model: {type: lr}
    optimizers:
      linear: {type: ftrl, alpha: 0.1, beta: 1.0, l1: 0.05, l2: 0.5, initial_accumulator_value: 0.1}
      dense: {type: adam, learning_rate: 0.001}
    training: {batch_size: 1, epochs: 1, shuffle_buffer: 0, threads: 1, log_every: 1}
    """

  /// TensorFlow's FTRL step for one coordinate, in Float64 (TF argument names; `beta` folded in
  /// as Keras does: l2 ← l2 + β/(2α)).
  static func tfFTRL(w: Double, linear: Double, accum: Double, g: Double, lr: Double, beta: Double, l1: Double, l2: Double)
    -> (w: Double, linear: Double, accum: Double) {
    let newAccum = accum + g * g
    let newLinear = linear + g - (newAccum.squareRoot() - accum.squareRoot()) / lr * w
    let quadratic = newAccum.squareRoot() / lr + 2 * (l2 + beta / (2 * lr))
    let newW = (min(max(newLinear, -l1), l1) - newLinear) / quadratic
    return (newW, newLinear, newAccum)
  }

  func row(_ model: CTRModel, _ table: String, _ value: String) -> UnsafeMutablePointer<Float>? {
    let t = model.tables.first { $0.name == table }!.table
    return t.find(TFHash.hashBucketFast(value, buckets: 1000))
  }

  func testOneTrainerStepOnOneExampleIsTensorFlowsFTRLOnTheSummedGradient() throws {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(Self.experimentYAML)
    // One clicked example of weight 2: c1 'a'; wcat 'x' with value 3; n1 = 0.5; no tags.
    let data = try scratch.records("one.tfrecord", [Example([
      "label": .int64List([1]), "w": .floatList([2]), "c1": bytesFeature("a"), "wcat": bytesFeature("x"),
      "wcat_w": .floatList([3]), "n1": .floatList([0.5]),
    ])])
    var options = TrainOptions()
    options.trainPaths = [data]
    options.outputDirectory = scratch.file("model")
    let trainer = try Trainer(experiment: experiment, options: options)
    let result = try trainer.run()
    XCTAssertEqual(result.state.step, 1)
    let model = trainer.model

    // Before the step every weight is 0, so z = 0 and p = 1/2. The per-example gradient of the
    // loss weighted by w = 2 is w·(p − y)·x = 2·(−1/2)·x = −x: −1 for c1 'a' (x = 1) and −3 for
    // wcat 'x' (x = its weight 3). Sparse rows take this sum itself, not the batch mean (which
    // would be −x/2 here).
    for (table, value, g) in [("c1/linear", "a", -1.0), ("wcat/linear", "x", -3.0)] {
      let slab = try XCTUnwrap(row(model, table, value))
      let expected = Self.tfFTRL(w: 0, linear: 0, accum: 0.1, g: g, lr: 0.1, beta: 1, l1: 0.05, l2: 0.5)
      // Slab layout [w | z (TF linear) | n (TF accum)].
      XCTAssertEqual(Double(slab[0]), expected.w, accuracy: 1e-6 * abs(expected.w), "\(table) weight")
      XCTAssertEqual(Double(slab[1]), expected.linear, accuracy: 1e-6, "\(table) linear slot")
      XCTAssertEqual(Double(slab[2]), expected.accum, accuracy: 1e-6 * expected.accum, "\(table) accumulator")
    }
    // By hand: c1: (−0.05 + 1)/(√1.1/0.1 + 2·(0.5 + 5)) = 0.95/21.48809 = 0.0442105.
    XCTAssertEqual(Double(row(model, "c1/linear", "a")![0]), 0.95 / (1.1.squareRoot() / 0.1 + 11), accuracy: 1e-8)
    XCTAssertEqual(Double(row(model, "c1/linear", "a")![0]), 0.0442105, accuracy: 1e-7)
    // The dense block took one Adam step on the batch mean: g_bias = −1/2, g_n1 = −1/4, so each
    // moved by lr·|g|/(|g| + ε) ≈ 0.001 against its gradient.
    XCTAssertEqual(model.dense.values.data[0], 0.001, accuracy: 1e-8, "n1 weight")
    XCTAssertEqual(model.dense.values.data[1], 0.001, accuracy: 1e-8, "bias")
    XCTAssertEqual(model.dense.steps, 1)
  }

  func testRepeatedIdsInABatchGetOneFTRLStepWithTheirSummedGradient() throws {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(Self.experimentYAML)
    let transformer = try Transformer(config: experiment.features, baseDirectory: experiment.baseDirectory)
    let model = try CTRModel(experiment: experiment, layout: transformer.layout)
    // c1 'a' in three examples; tags 't1' twice inside example 0 and once in example 2.
    let examples = [
      Example(["label": .int64List([1]), "w": .floatList([1]), "c1": bytesFeature("a"), "tags": bytesFeature("t1", "t1", "t2")]),
      Example(["label": .int64List([0]), "w": .floatList([2]), "c1": bytesFeature("a")]),
      Example(["label": .int64List([1]), "w": .floatList([0.5]), "c1": bytesFeature("a"), "tags": bytesFeature("t1")]),
      Example(["label": .int64List([0]), "w": .floatList([1]), "c1": bytesFeature("b")]),
    ]
    let b = try resolvedBatch(model, transformer, examples)
    let c1 = model.tables.firstIndex { $0.name == "c1/linear" }!
    let tags = model.tables.firstIndex { $0.name == "tags/linear" }!
    XCTAssertEqual(b.unique[c1].count, 2, "c1: rows a and b, each once")
    XCTAssertEqual(b.unique[tags].count, 2, "tags: rows t1 and t2, each once")
    let slabA = try XCTUnwrap(row(model, "c1/linear", "a"))
    let slabT1 = try XCTUnwrap(row(model, "tags/linear", "t1"))
    let uA = (0..<b.unique[c1].count).first { b.unique[c1].base[$0] == slabA }!
    let uT1 = (0..<b.unique[tags].count).first { b.unique[tags].base[$0] == slabT1 }!

    let worker = ComputeWorker(model: model)
    _ = try worker.computeGradients(b)
    // All weights are 0, so p = 1/2 everywhere; w·(p − y) = −1/2, +1, −1/4, +1/2 per example.
    // a: −1/2 + 1 − 1/4 = 1/4.  t1: 2·(−1/2) + (−1/4) = −5/4.
    let gA = worker.gradient(table: c1, unique: uA)
    let gT1 = worker.gradient(table: tags, unique: uT1)
    XCTAssertEqual(gA, [0.25])
    XCTAssertEqual(gT1, [-1.25])

    let before = (a: Array(UnsafeBufferPointer(start: slabA, count: 3)), t1: Array(UnsafeBufferPointer(start: slabT1, count: 3)))
    worker.applyUpdates(b)
    let rule = try FTRLProximal(alpha: 0.1, beta: 1, l1: 0.05, l2: 0.5, initialAccumulatorValue: 0.1)
    for (name, slab, start, g) in [("a", slabA, before.a, gA), ("t1", slabT1, before.t1, gT1)] {
      var once = start
      once.withUnsafeMutableBufferPointer { p in
        rule.update(weights: p.baseAddress!, state: p.baseAddress! + 1, gradient: g, dimension: 1, step: 0)
      }
      XCTAssertEqual(Array(UnsafeBufferPointer(start: slab, count: 3)), once, "\(name): one FTRL step with the summed gradient")
    }
    // The distinction is real: stepping per occurrence (FTRL is non-linear in g) gives another weight.
    var perOccurrence = before.t1
    perOccurrence.withUnsafeMutableBufferPointer { p in
      for g: Float in [-0.5, -0.5, -0.25] {
        rule.update(weights: p.baseAddress!, state: p.baseAddress! + 1, gradient: [g], dimension: 1, step: 0)
      }
    }
    XCTAssertGreaterThan(abs(perOccurrence[0] - slabT1[0]), 1e-3)
  }
}
