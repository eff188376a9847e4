import Foundation
import XCTest
import Features
import Records
@testable import CTR

/// Training that cannot go on stops with an error that says where, and leaves the last good
/// checkpoint as it was.
final class TrainerFailureTests: XCTestCase {
  static func experimentYAML(dense: String, epochs: Int = 2, shuffle: Int = 50) -> String {
    """
    features:
      label: label
      columns:
        - {name: ad, type: hash_bucket, hash_bucket_size: 100}
        - {name: segment, type: hash_bucket, hash_bucket_size: 100}
        - {name: x1, type: numeric}
        - {name: x2, type: numeric}
    model: {type: lr}
    optimizers:
      linear: {type: ftrl, alpha: 0.05, beta: 1.0}
      dense: \(dense)
    training: {batch_size: 32, epochs: \(epochs), shuffle_buffer: \(shuffle), seed: 11, threads: 1}
    """
  }

  /// Examples with large raw dense inputs (100 to 1000, no normalizer).
  static func examples(_ n: Int, seed: UInt64) -> [Example] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in
      let ad = Int(rng.next() % 8)
      return Example([
        "label": .int64List([ad < 3 ? 1 : 0]), "ad": bytesFeature("ad\(ad)"), "segment": bytesFeature("s\(rng.next() % 3)"),
        "x1": .floatList([rng.float(100, 1000)]), "x2": .floatList([rng.float(100, 1000)]),
      ])
    }
  }

  func options(_ scratch: ScratchDirectory, _ paths: [String], epochs: Int? = nil, resume: Bool = false) -> TrainOptions {
    var o = TrainOptions()
    o.trainPaths = paths
    o.outputDirectory = scratch.file("model")
    o.epochs = epochs
    o.resume = resume
    return o
  }

  /// Epoch 1 trains with a sane Adam; epoch 2 is resumed with Adam's learning rate at 1e36. The
  /// first step of epoch 2 moves every dense weight by ~1e36 (all the same sign: the inputs are
  /// positive), so the next batch's logits overflow Float32 and its loss is not finite.
  func testAbsurdLearningRateStopsWithATrainingErrorAndKeepsTheLastGoodCheckpoint() throws {
    let scratch = ScratchDirectory()
    let sane = try scratch.experiment(Self.experimentYAML(dense: "{type: adam, learning_rate: 0.001}"), name: "sane.yaml")
    let absurd = try scratch.experiment(Self.experimentYAML(dense: "{type: adam, learning_rate: 1.0e36}"), name: "absurd.yaml")
    let shard = try scratch.records("train.tfrecord", Self.examples(200, seed: 4))

    let first = try Trainer(experiment: sane, options: options(scratch, [shard], epochs: 1)).run()
    XCTAssertEqual(first.state.step, 7, "200 examples in batches of 32")
    XCTAssertTrue(first.trainLoss?.isFinite ?? false)
    let checkpoint = scratch.file("model/checkpoint.bin")
    let good = fileBytes(checkpoint)

    XCTAssertThrowsError(try Trainer(experiment: absurd, options: options(scratch, [shard], epochs: 2, resume: true)).run()) { error in
      guard let e = error as? TrainingError else { return XCTFail("expected a TrainingError, got \(error)") }
      // The second batch of epoch 2: the 9th step of the run (steps count from 1, as in logs).
      XCTAssertTrue(e.message.contains("at step 9 "), e.message)
      XCTAssertTrue(e.message.contains(shard + ", record "), e.message)
      XCTAssertTrue(e.message.contains("training diverged"), e.message)
      let record = e.message.components(separatedBy: "record ").last.flatMap { Int($0.prefix { $0.isNumber }) }
      XCTAssertNotNil(record.map { (0..<200).contains($0) }, e.message)
    }
    XCTAssertTrue(fileBytes(checkpoint) == good, "the checkpoint from the end of epoch 1 is untouched")
    let (_, state) = try ParameterSnapshot.load(checkpoint, experiment: sane)
    XCTAssertEqual(state.epoch, 1)
    XCTAssertEqual(state.step, 7)
  }

  /// A record whose input makes the loss non-finite is named by its own file and index, also
  /// when the shuffle buffer mixes records of several files into one batch.
  func testANonFiniteLossNamesTheFileAndRecordItCameFrom() throws {
    for (badShard, badRecord) in [(0, 3), (1, 7)] {
      let scratch = ScratchDirectory()
      let experiment = try scratch.experiment(Self.experimentYAML(dense: "{type: adam, learning_rate: 0.001}", epochs: 1, shuffle: 100))
      var shards: [String] = []
      for s in 0..<2 {
        var examples = Self.examples(16, seed: UInt64(10 + s))
        if s == badShard { examples[badRecord].features!["x1"] = .floatList([.infinity]) }
        shards.append(try scratch.records("part-\(s).tfrecord", examples))
      }
      // One batch of 32 holds both files' records, shuffled together.
      XCTAssertThrowsError(try Trainer(experiment: experiment, options: options(scratch, shards)).run()) { error in
        guard let e = error as? TrainingError else { return XCTFail("expected a TrainingError, got \(error)") }
        XCTAssertTrue(e.message.contains("at step 1 "), e.message)
        XCTAssertTrue(e.message.contains("\(shards[badShard]), record \(badRecord))"), e.message)
      }
    }
  }

  /// Two shards; after epoch 1 one of them is deleted; the resumed run fails on it by name and
  /// the epoch-1 checkpoint stays intact.
  func testADataFileThatDisappearsBeforeTheNextEpochFailsNamingItAndKeepsTheCheckpoint() throws {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(Self.experimentYAML(dense: "{type: adam, learning_rate: 0.001}"))
    let shards = [try scratch.records("part-0.tfrecord", Self.examples(100, seed: 1)),
                  try scratch.records("part-1.tfrecord", Self.examples(100, seed: 2))]
    let first = try Trainer(experiment: experiment, options: options(scratch, shards, epochs: 1)).run()
    XCTAssertEqual(first.state.epoch, 1)
    let checkpoint = scratch.file("model/checkpoint.bin")
    let good = fileBytes(checkpoint)

    try FileManager.default.removeItem(atPath: shards[1])
    XCTAssertThrowsError(try Trainer(experiment: experiment, options: options(scratch, shards, epochs: 2, resume: true)).run()) { error in
      guard let e = error as? RecordsError else { return XCTFail("expected a RecordsError, got \(error)") }
      XCTAssertEqual(e.kind, .io)
      XCTAssertEqual(e.path, shards[1])
      XCTAssertEqual(e.description, "\(shards[1]): cannot open: No such file or directory")
    }
    XCTAssertTrue(fileBytes(checkpoint) == good, "the checkpoint from the end of epoch 1 is untouched")
    let (_, state) = try ParameterSnapshot.load(checkpoint, experiment: experiment)
    XCTAssertEqual(state.epoch, 1)
    XCTAssertEqual(state.step, first.state.step)
  }
}
