import Foundation
import XCTest
import Features
import Records
@testable import CTR

/// The parameter part of a checkpoint file: every table's bytes and the dense block (values and
/// optimizer state), i.e. everything after the JSON header and before the CRC.
func checkpointParameterBytes(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> ArraySlice<UInt8> {
  let bytes = fileBytes(path)
  guard bytes.count > 16 else {
    XCTFail("\(path) is not a checkpoint (\(bytes.count) bytes)", file: file, line: line)
    return []
  }
  let headerLength = bytes[8..<12].withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
  return bytes[(12 + headerLength)..<(bytes.count - 4)]
}

/// Deterministic (`threads: 1`) training resumes exactly: an interrupted and resumed run ends
/// with the same parameters and optimizer state, bit for bit, as an uninterrupted one.
final class TrainerResumeTests: XCTestCase {
  /// FM with all three optimizer groups (FTRL linear, AdaGrad factors, Adam dense) and a shuffle
  /// buffer smaller than an epoch, so a resumed run must replay the shuffle to skip the right
  /// batches.
  static let experimentYAML = """
    features:
    \(SyntheticClicks.nestedFeatures)
    model: {type: fm, factors: 4, init_std: 0.05}
    optimizers:
      linear: {type: ftrl, alpha: 0.1, beta: 1.0, l1: 0.01, l2: 0.1}
      factors: {type: adagrad, learning_rate: 0.05, l2: 0.001}
      dense: {type: adam, learning_rate: 0.01}
    training: {batch_size: 32, epochs: 2, shuffle_buffer: 100, seed: 5, threads: 1, log_every: 4}
    """

  func options(_ scratch: ScratchDirectory, _ dir: String, _ paths: [String], epochs: Int? = nil, resume: Bool = false) -> TrainOptions {
    var o = TrainOptions()
    o.trainPaths = paths
    o.outputDirectory = scratch.file(dir)
    o.epochs = epochs
    o.resume = resume
    return o
  }

  func testOneEpochThenResumeForTheSecondEqualsTwoEpochsStraight() throws {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(Self.experimentYAML)
    let shards = [try scratch.records("a.tfrecord", SyntheticClicks.examples(150, seed: 1)),
                  try scratch.records("b.tfrecord", SyntheticClicks.examples(130, seed: 2))]

    let straight = try Trainer(experiment: experiment, options: options(scratch, "straight", shards)).run()
    XCTAssertEqual(straight.state.epoch, 2)

    let first = try Trainer(experiment: experiment, options: options(scratch, "resumed", shards, epochs: 1)).run()
    XCTAssertEqual(first.state.epoch, 1)
    XCTAssertLessThan(first.state.step, straight.state.step)
    let afterFirstEpoch = checkpointParameterBytes(scratch.file("resumed/checkpoint.bin"))
    let second = try Trainer(experiment: experiment, options: options(scratch, "resumed", shards, epochs: 2, resume: true)).run()
    XCTAssertEqual(second.state.epoch, 2)
    XCTAssertEqual(second.examples, 280, "the resumed run trains the second epoch")
    XCTAssertEqual(second.state, straight.state)

    let a = scratch.file("straight/checkpoint.bin"), b = scratch.file("resumed/checkpoint.bin")
    XCTAssertTrue(checkpointParameterBytes(a) == checkpointParameterBytes(b), "tables and dense block, byte for byte")
    let (pa, sa) = try ParameterSnapshot.load(a, experiment: experiment)
    let (pb, sb) = try ParameterSnapshot.load(b, experiment: experiment)
    XCTAssertEqual(sa, sb)
    XCTAssertTrue(pa == pb, "every parameter and optimizer-state float")
    XCTAssertEqual(Set(pa.tables.keys), ["ad/linear", "ad/factors", "segment/linear", "segment/factors", "user/linear", "user/factors"])
    // Not vacuous: the second epoch changed the parameters.
    XCTAssertFalse(afterFirstEpoch == checkpointParameterBytes(b))
  }

  /// A run that stopped at max_steps (mid-epoch, finished) continues when max_steps is raised,
  /// and stays put when it is not.
  func testRaisingMaxStepsContinuesAFinishedRunFromWhereItStopped() throws {
    let scratch = ScratchDirectory()
    func experiment(maxSteps: Int) throws -> ExperimentConfig {
      try scratch.experiment(Self.experimentYAML.replacingOccurrences(of: "threads: 1,", with: "threads: 1, max_steps: \(maxSteps),"),
                             name: "max-\(maxSteps).yaml")
    }
    let shards = [try scratch.records("a.tfrecord", SyntheticClicks.examples(150, seed: 1)),
                  try scratch.records("b.tfrecord", SyntheticClicks.examples(130, seed: 2))]
    let straight = try Trainer(experiment: try experiment(maxSteps: 12), options: options(scratch, "straight", shards)).run()
    XCTAssertEqual(straight.state.step, 12)
    XCTAssertEqual(straight.state.epoch, 1, "9 batches per epoch: step 12 is in the second epoch")

    let first = try Trainer(experiment: try experiment(maxSteps: 5), options: options(scratch, "resumed", shards)).run()
    XCTAssertEqual(first.state.step, 5)
    XCTAssertTrue(first.state.finished)
    let same = try Trainer(experiment: try experiment(maxSteps: 5), options: options(scratch, "resumed", shards, resume: true)).run()
    XCTAssertEqual(same.examples, 0, "max_steps still reached: nothing to do")
    let more = try Trainer(experiment: try experiment(maxSteps: 12), options: options(scratch, "resumed", shards, resume: true)).run()
    XCTAssertEqual(more.state, straight.state)
    XCTAssertTrue(checkpointParameterBytes(scratch.file("straight/checkpoint.bin")) == checkpointParameterBytes(scratch.file("resumed/checkpoint.bin")))
  }

  /// A run that dies mid-epoch (here: its shard turns out truncated at record 250) leaves the
  /// last `checkpoint_every` checkpoint; resuming from it once the data is whole again ends
  /// exactly where an uninterrupted run does.
  func testResumingFromAMidEpochCheckpointEqualsAnUninterruptedRun() throws {
    let scratch = ScratchDirectory()
    let yaml = Self.experimentYAML.replacingOccurrences(
      of: "training: {batch_size: 32, epochs: 2, shuffle_buffer: 100,",
      with: "training: {batch_size: 16, epochs: 2, shuffle_buffer: 64, checkpoint_every: 5,")
    XCTAssertNotEqual(yaml, Self.experimentYAML)
    let experiment = try scratch.experiment(yaml)
    let examples = SyntheticClicks.examples(300, seed: 3)

    let whole = try scratch.records("whole.tfrecord", examples)
    let straight = try Trainer(experiment: experiment, options: options(scratch, "straight", [whole])).run()
    XCTAssertEqual(straight.state.step, 2 * 19)

    // The same shard cut inside record 250: the reader fails when it gets there, after the
    // shuffle buffer (64) and 11 batches of 16 have been read, so after the checkpoint at step 10.
    let shard = scratch.file("shard.tfrecord")
    try scratch.records("shard.tfrecord", Array(examples[0..<251]))
    let cut = fileBytes(shard).dropLast(10)
    try Data(cut).write(to: URL(fileURLWithPath: shard))
    XCTAssertThrowsError(try Trainer(experiment: experiment, options: options(scratch, "resumed", [shard])).run()) { error in
      let e = error as? RecordsError
      XCTAssertEqual(e?.kind, .truncated, "\(error)")
      XCTAssertEqual(e?.path, shard)
    }
    let (_, saved) = try ParameterSnapshot.load(scratch.file("resumed/checkpoint.bin"), experiment: experiment)
    XCTAssertEqual(saved.epoch, 0)
    XCTAssertEqual(saved.batchInEpoch, 10, "the checkpoint is mid-epoch")
    XCTAssertEqual(saved.step, 10)
    XCTAssertFalse(saved.finished)

    try scratch.records("shard.tfrecord", examples)
    let resumed = try Trainer(experiment: experiment, options: options(scratch, "resumed", [shard], resume: true)).run()
    XCTAssertEqual(resumed.examples, 600 - 160, "the 10 batches before the checkpoint are skipped, not retrained")
    XCTAssertEqual(resumed.state, straight.state)
    let a = scratch.file("straight/checkpoint.bin"), b = scratch.file("resumed/checkpoint.bin")
    XCTAssertTrue(checkpointParameterBytes(a) == checkpointParameterBytes(b), "tables and dense block, byte for byte")
    XCTAssertTrue(try ParameterSnapshot.load(a, experiment: experiment).0 == ParameterSnapshot.load(b, experiment: experiment).0)
  }
}
