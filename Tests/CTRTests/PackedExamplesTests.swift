import Foundation
import XCTest
import Features
import Records
@testable import CTR

/// Packed examples (what the trainer shuffles, and keeps with `--in-memory`): a batch gathered
/// from packed examples must train exactly like the same examples resolved from their ids, and
/// an in-memory epoch must be the same epoch as one read from the files.
final class PackedExamplesTests: XCTestCase {
  /// Per table, the gradient of every touched row keyed by its slab (unique order differs between
  /// the two paths; the rows do not).
  func gradientsByRow(_ model: CTRModel, _ worker: ComputeWorker, _ b: ResolvedBatch) -> [String: [UnsafeMutablePointer<Float>: [Float]]] {
    var out: [String: [UnsafeMutablePointer<Float>: [Float]]] = [:]
    for (t, table) in model.tables.enumerated() {
      var rows: [UnsafeMutablePointer<Float>: [Float]] = [:]
      for u in 0..<b.unique[t].count { rows[b.unique[t].base[u]] = worker.gradient(table: t, unique: u) }
      out[table.name] = rows
    }
    return out
  }

  func makeModel(_ modelYAML: String, features: String = ModelGradientTests.features) throws -> (CTRModel, Transformer) {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(features + "\n" + modelYAML)
    let transformer = try Transformer(config: experiment.features, baseDirectory: experiment.baseDirectory)
    return (try CTRModel(experiment: experiment, layout: transformer.layout), transformer)
  }

  /// Resolves the gradient-test examples (weights, sqrtn/mean combiners, sequences, dense inputs,
  /// an empty bag, a negative weight), packs them, gathers them back in `order`, and compares
  /// losses, logits and every row's gradient with the resolved batch.
  func checkGatherMatchesResolve(_ modelYAML: String, order: [Int], exact: Bool, features: String = ModelGradientTests.features,
                                 minimumCompared: Int = 16, file: StaticString = #filePath, line: UInt = #line) throws {
    let (model, transformer) = try makeModel(modelYAML, features: features)
    let examples = ModelGradientTests.examples
    let parsed = ParsedBatch(spec: transformer.spec)
    try ExampleParser(spec: transformer.spec).parse(examples.map { $0.serialized() }, into: parsed)
    let resolved = ResolvedBatch(model: model)
    try transformer.transform(parsed, into: resolved.features)
    Resolver(model: model).resolve(resolved, create: true)
    // Non-trivial parameters, so every gradient term is exercised.
    var rng = SplitMix64(seed: 77)
    for t in model.tables.indices {
      for u in 0..<resolved.unique[t].count {
        for j in 0..<model.tables[t].dimension { resolved.unique[t].base[u][j] = rng.float(-0.5, 0.5) }
      }
    }
    for i in 0..<model.dense.count { model.dense.values.data[i] = rng.float(-0.5, 0.5) }

    let layout = PackedLayout(model: model)
    let registry = PathRegistry()
    let segment = ExampleSegment(number: 0)
    let rowsBefore = model.tables.map { $0.table.rowCount }
    segment.pack(resolved.features, model: model, layout: layout, paths: registry)
    XCTAssertEqual(model.tables.map { $0.table.rowCount }, rowsBefore, "packing known ids creates no rows", file: file, line: line)
    XCTAssertEqual(segment.count, examples.count, file: file, line: line)
    let handles = order.map { segment.handles[$0] }
    let gathered = ResolvedBatch(model: model)
    handles.withUnsafeBufferPointer { Gatherer(model: model, layout: layout, paths: registry).gather($0.baseAddress!, count: handles.count, into: gathered) }
    XCTAssertEqual(gathered.count, order.count, file: file, line: line)
    for t in model.tables.indices {
      XCTAssertEqual(Set((0..<gathered.unique[t].count).map { gathered.unique[t].base[$0] }),
                     Set((0..<resolved.unique[t].count).map { resolved.unique[t].base[$0] }),
                     "\(model.tables[t].name): the same rows, each once", file: file, line: line)
    }

    let a = ComputeWorker(model: model), b = ComputeWorker(model: model)
    var logitsA = [Float](repeating: 0, count: examples.count), logitsB = logitsA
    logitsA.withUnsafeMutableBufferPointer { a.predict(resolved, into: $0.baseAddress!) }
    logitsB.withUnsafeMutableBufferPointer { b.predict(gathered, into: $0.baseAddress!) }
    for (r, e) in order.enumerated() {
      XCTAssertEqual(logitsB[r], logitsA[e], "logit of example \(e)", file: file, line: line)
      XCTAssertEqual(gathered.labels[r], resolved.labels[e], file: file, line: line)
      XCTAssertEqual(gathered.weights[r], resolved.weights[e], file: file, line: line)
      XCTAssertEqual(gathered.describeRecord(r), resolved.describeRecord(e), file: file, line: line)
    }
    let lossA = try a.computeGradients(resolved), lossB = try b.computeGradients(gathered)
    XCTAssertEqual(lossA.weight, lossB.weight, file: file, line: line)
    XCTAssertEqual(lossA.loss, lossB.loss, accuracy: exact ? 0 : 1e-9 * abs(lossA.loss), file: file, line: line)
    let ga = gradientsByRow(model, a, resolved), gb = gradientsByRow(model, b, gathered)
    var compared = 0
    for (name, rows) in ga {
      for (slab, g) in rows {
        guard let other = gb[name]?[slab] else { XCTFail("\(name): a row missing from the gathered batch", file: file, line: line); continue }
        for j in g.indices {
          if exact {
            XCTAssertEqual(other[j], g[j], "\(name)[\(j)]", file: file, line: line)
          } else {
            XCTAssertEqual(other[j], g[j], accuracy: 1e-5 * max(1, abs(g[j])), "\(name)[\(j)]", file: file, line: line)
          }
          compared += 1
        }
      }
    }
    XCTAssertGreaterThanOrEqual(compared, minimumCompared, "every linear row at least", file: file, line: line)
    XCTAssertEqual(a.denseGradient.count, b.denseGradient.count, file: file, line: line)
    for j in a.denseGradient.indices {
      XCTAssertEqual(b.denseGradient[j], a.denseGradient[j], accuracy: exact ? 0 : 1e-5 * max(1, abs(a.denseGradient[j])),
                     file: file, line: line)
    }
  }

  func testGatheredBatchTrainsBitForBitLikeTheResolvedOneInTheSameOrder() throws {
    try checkGatherMatchesResolve("model: {type: fm, factors: 3, dense_fields: true}", order: Array(0..<8), exact: true)
    try checkGatherMatchesResolve("model: {type: lr}", order: Array(0..<8), exact: true)
  }

  func testGatheredBatchInAnotherOrderGivesTheSameGradients() throws {
    try checkGatherMatchesResolve("model: {type: fm, factors: 16, dense_fields: false, fm_columns: [tags, wcat, hist]}",
                                  order: [5, 2, 7, 0, 3, 6, 1, 4], exact: false)
  }

  /// Without a weighted column no example stores values, so packing takes its fast loop (ids
  /// found in the tables' direct maps, a lockstep factor row checked against the linear one).
  /// The resolver has created every row before packing, as the first epoch has for the later ones.
  func testGatherMatchesResolveWhenPackingTakesTheDirectMapLoop() throws {
    let unweighted = ModelGradientTests.features
      .replacingOccurrences(of: "    - {name: wcat, type: hash_bucket, hash_bucket_size: 1000, weight_feature: wcat_w, embedding: {dimension: 3, combiner: sqrtn}}\n", with: "")
    XCTAssertFalse(unweighted.contains("wcat"))
    for model in ["model: {type: lr}", "model: {type: fm, factors: 4}"] {
      // 15 linear rows: c1 a–d, tags t1–t5, hist h1–h6.
      try checkGatherMatchesResolve(model, order: [3, 1, 4, 0, 7, 5, 2, 6], exact: false, features: unweighted, minimumCompared: 15)
      let (m, _) = try makeModel(model, features: unweighted)
      XCTAssertFalse(PackedLayout(model: m).storesValues, "the fast loop's condition")
    }
  }

  func testGatherWithASharedFactorTable() throws {
    // Two fields drawing on one factor table: its rows are not in step with either linear table.
    let shared = ModelGradientTests.features
      .replacingOccurrences(of: "- {name: c1, type: hash_bucket, hash_bucket_size: 1000}",
                            with: "- {name: c1, type: hash_bucket, hash_bucket_size: 1000, embedding: {dimension: 3, shared: common}}")
      .replacingOccurrences(of: "embedding: {dimension: 3, combiner: mean}", with: "embedding: {dimension: 3, combiner: mean, shared: common}")
    try checkGatherMatchesResolve("model: {type: fm, factors: 4}", order: [7, 6, 5, 4, 3, 2, 1, 0], exact: false, features: shared)
  }

  /// With the whole data set in one batch, an epoch's update does not depend on the order of its
  /// examples (up to float rounding of the sums), so an in-memory second epoch must leave the
  /// model where a second epoch read from the files does.
  func testAnInMemoryEpochIsTheSameEpochAsOneReadFromTheFiles() throws {
    let scratch = ScratchDirectory()
    let yaml = """
      features:
      \(SyntheticClicks.nestedFeatures)
      model: {type: fm, factors: 4, init_std: 0.05}
      optimizers:
        linear: {type: ftrl, alpha: 0.1, beta: 1.0, l1: 0.01, l2: 0.1}
        factors: {type: adagrad, learning_rate: 0.05, l2: 0.001}
        dense: {type: adagrad, learning_rate: 0.05}
      training: {batch_size: 1000, epochs: 2, shuffle_buffer: 1000, seed: 5, threads: 1}
      """
    let experiment = try scratch.experiment(yaml)
    let shards = [try scratch.records("a.tfrecord", SyntheticClicks.examples(150, seed: 1)),
                  try scratch.records("b.tfrecord", SyntheticClicks.examples(130, seed: 2))]
    func run(_ dir: String, inMemory: Bool) throws -> (TrainResult, CTRModel) {
      var o = TrainOptions()
      o.trainPaths = shards
      o.outputDirectory = scratch.file(dir)
      o.inMemory = inMemory
      let trainer = try Trainer(experiment: experiment, options: o)
      return (try trainer.run(), trainer.model)
    }
    let (fromFiles, filesModel) = try run("files", inMemory: false)
    let (inMemory, memoryModel) = try run("memory", inMemory: true)
    XCTAssertEqual(fromFiles.examples, 560)
    XCTAssertEqual(inMemory.examples, 560)
    XCTAssertEqual(fromFiles.inMemoryBytes, 0)
    XCTAssertGreaterThan(inMemory.inMemoryBytes, 280 * 16, "the dataset holds every example")
    XCTAssertEqual(inMemory.epochTimings.map(\.examples), [280, 280])
    var compared = 0
    for (t, table) in filesModel.tables.enumerated() {
      let other = memoryModel.tables[t].table
      XCTAssertEqual(table.table.rowCount, other.rowCount, table.name)
      table.table.forEachRow { id, w in
        guard let o = other.find(id) else { return XCTFail("\(table.name): id \(id) missing") }
        for j in 0..<w.count {
          XCTAssertEqual(o[j], w[j], accuracy: 1e-5 * max(1, abs(w[j])), "\(table.name) id \(id)[\(j)]")
          compared += 1
        }
      }
    }
    XCTAssertGreaterThan(compared, 100)
    for i in 0..<filesModel.dense.count {
      XCTAssertEqual(memoryModel.dense.values.data[i], filesModel.dense.values.data[i], accuracy: 1e-5)
    }
  }

  /// In-memory epochs shuffle with the run's seed: one compute thread gives the same model twice.
  func testInMemoryTrainingIsDeterministicWithOneThread() throws {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(TrainerResumeTests.experimentYAML)
    let shards = [try scratch.records("a.tfrecord", SyntheticClicks.examples(150, seed: 1))]
    func run(_ dir: String) throws -> TrainResult {
      var o = TrainOptions()
      o.trainPaths = shards
      o.outputDirectory = scratch.file(dir)
      o.inMemory = true
      o.epochs = 3
      return try Trainer(experiment: experiment, options: o).run()
    }
    let first = try run("one"), second = try run("two")
    XCTAssertEqual(first.examples, 450)
    XCTAssertEqual(second.examples, 450)
    XCTAssertEqual(checkpointParameterBytes(scratch.file("one/checkpoint.bin")), checkpointParameterBytes(scratch.file("two/checkpoint.bin")))
  }
}
