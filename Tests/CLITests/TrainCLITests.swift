import CTR
import Features
import Foundation
import Records
import XCTest

/// `ctrkit train` and `ctrkit eval`, run as a user runs them, on generated TFRecords.
final class TrainCLITests: XCTestCase {
  struct Setup {
    let dir: ScratchDirectory
    let config: String
    let train: [String]
    let eval: String
    let evalExamples: [Example]
  }

  func setup(grouped: Bool) throws -> Setup {
    let dir = ScratchDirectory()
    try TrainCLIData.features(grouped: grouped).write(toFile: dir.file("features.yaml"), atomically: true, encoding: .utf8)
    try TrainCLIData.experiment.write(toFile: dir.file("experiment.yaml"), atomically: true, encoding: .utf8)
    let train = [dir.file("train-0.tfrecord"), dir.file("train-1.tfrecord")]
    try TrainCLIData.writeRecords(train[0], TrainCLIData.examples(500, seed: 1))
    try TrainCLIData.writeRecords(train[1], TrainCLIData.examples(500, seed: 2))
    let evalExamples = TrainCLIData.examples(600, seed: 3)
    try TrainCLIData.writeRecords(dir.file("eval.tfrecord"), evalExamples)
    return Setup(dir: dir, config: dir.file("experiment.yaml"), train: train, eval: dir.file("eval.tfrecord"), evalExamples: evalExamples)
  }

  func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
    do {
      return try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))
    } catch {
      XCTFail("not JSON: \(text)", file: file, line: line)
      throw error
    }
  }

  func number(_ v: JSONValue?, file: StaticString = #filePath, line: UInt = #line) -> Double {
    guard case .number(let s)? = v, let d = Double(s) else {
      XCTFail("expected a number, got \(String(describing: v))", file: file, line: line)
      return .nan
    }
    return d
  }

  /// The model directory's checkpoint scored through `Evaluator` on the evaluation examples:
  /// the logits, labels and group keys the CLI's metrics should come from.
  func scoreWithEvaluator(model dir: String, checkpoint: String, examples: [Example]) throws -> (logits: [Float], labels: [Float], groups: [Int64]) {
    let experiment = try ModelStore.readExperiment(dir)
    let transformer = try Transformer(config: experiment.features, baseDirectory: dir)
    let model = try CTRModel(experiment: experiment, layout: transformer.layout)
    _ = try ModelStore.load(dir + "/" + checkpoint, into: model)
    let parsed = ParsedBatch(spec: transformer.spec)
    try ExampleParser(spec: transformer.spec).parse(examples.map { $0.serialized() }, into: parsed)
    let features = transformer.makeBatch()
    try transformer.transform(parsed, into: features)
    let logits = Evaluator(model: model, transformer: transformer).predict(features)
    return (logits, Array(features.labels), transformer.layout.hasGroups ? Array(features.groups) : [])
  }

  func testTrainThenEvalJSONReportsTheMetricsOfTheModelsLogitsWithGAUCForAGroupedConfig() throws {
    let s = try setup(grouped: true)
    let model = s.dir.file("model")
    let train = try CLI.run(["train", "--config", s.config, "--train"] + s.train + ["--eval", s.eval, "-o", model, "--json"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let trained = try json(train.stdout)
    XCTAssertEqual(number(trained["steps"]), 32, "1000 examples in batches of 32")
    XCTAssertEqual(number(trained["examples"]), 1000)
    XCTAssertEqual(trained["evaluations"]?.trainCLIArray?.count, 1, "evaluated at the end of the epoch")
    for name in ["experiment.yaml", "checkpoint.bin", "best.bin"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: model + "/" + name), name)
    }

    let eval = try CLI.run(["eval", "--model", model, "--data", s.eval, "--json"])
    XCTAssertEqual(eval.status, 0, eval.stderr)
    let report = try json(eval.stdout)
    XCTAssertEqual(number(report["count"]), 600)
    XCTAssertEqual(number(report["step"]), 32)
    XCTAssertEqual(report["checkpoint"], .string("best.bin"))
    for key in ["auc", "logloss", "normalized_entropy", "calibration", "observed_ctr", "gauc", "gauc_groups", "gauc_groups_skipped"] {
      XCTAssertNotNil(report[key], "\(key) in \(eval.stdout)")
    }

    let scored = try scoreWithEvaluator(model: model, checkpoint: "best.bin", examples: s.evalExamples)
    let auc = try XCTUnwrap(Metrics.auc(scores: scored.logits, labels: scored.labels))
    XCTAssertEqual(number(report["auc"]), auc, accuracy: 1e-12)
    XCTAssertGreaterThan(auc, 0.74, "the model learned the task (0.794 when this test was written)")
    let logLoss = try XCTUnwrap(Metrics.logLoss(logits: scored.logits, labels: scored.labels))
    XCTAssertEqual(number(report["logloss"]), logLoss, accuracy: 1e-12)
    let ctr = Double(scored.labels.reduce(0, +)) / 600
    XCTAssertEqual(number(report["observed_ctr"]), ctr, accuracy: 1e-12)
    XCTAssertEqual(number(report["normalized_entropy"]), Metrics.normalizedEntropy(logLoss: logLoss, baseRate: ctr)!, accuracy: 1e-12)
    let probabilities = scored.logits.map { 1 / (1 + expf(-$0)) }
    XCTAssertEqual(number(report["calibration"]), Metrics.calibration(predictions: probabilities, labels: scored.labels)!, accuracy: 1e-5)
    let gauc = Metrics.gauc(scores: scored.logits, labels: scored.labels, groups: scored.groups)
    XCTAssertEqual(number(report["gauc"]), try XCTUnwrap(gauc.value), accuracy: 1e-12)
    XCTAssertEqual(number(report["gauc_groups"]), Double(gauc.groupsUsed))
    XCTAssertEqual(number(report["gauc_groups_skipped"]), Double(gauc.groupsSkipped))
    XCTAssertEqual(gauc.groupsUsed + gauc.groupsSkipped, 40, "one group per user")

    // The training run's own evaluation saw the same model and data.
    let during = try XCTUnwrap(trained["evaluations"]?.trainCLIArray?.first)
    XCTAssertEqual(number(during["auc"]), auc, accuracy: 1e-12)

    // --checkpoint latest reads checkpoint.bin (here the same step).
    let latest = try CLI.run(["eval", "--model", model, "--data", s.eval, "--checkpoint", "latest", "--json"])
    XCTAssertEqual(latest.status, 0, latest.stderr)
    XCTAssertEqual(try json(latest.stdout)["checkpoint"], .string("checkpoint.bin"))
  }

  func testEvalOfAConfigWithoutAGroupReportsNoGAUC() throws {
    let s = try setup(grouped: false)
    let model = s.dir.file("model")
    let train = try CLI.run(["train", "--config", s.config, "--train"] + s.train + ["-o", model, "--json"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let eval = try CLI.run(["eval", "--model", model, "--data", s.eval, "--json"])
    XCTAssertEqual(eval.status, 0, eval.stderr)
    let report = try json(eval.stdout)
    XCTAssertNil(report["gauc"], eval.stdout)
    XCTAssertNil(report["gauc_groups"], eval.stdout)
    // No evaluation during training, so no best.bin: eval falls back to the latest checkpoint.
    XCTAssertEqual(report["checkpoint"], .string("checkpoint.bin"))
    let scored = try scoreWithEvaluator(model: model, checkpoint: "checkpoint.bin", examples: s.evalExamples)
    XCTAssertEqual(number(report["auc"]), try XCTUnwrap(Metrics.auc(scores: scored.logits, labels: scored.labels)), accuracy: 1e-12)
  }

  func testTrainingIntoADirectoryWithACheckpointNeedsResumeAndResumeAddsEpochs() throws {
    let s = try setup(grouped: false)
    let model = s.dir.file("model")
    let first = try CLI.run(["train", "--config", s.config, "--train"] + s.train + ["-o", model, "--json"])
    XCTAssertEqual(first.status, 0, first.stderr)
    let checkpoint = FileManager.default.contents(atPath: model + "/checkpoint.bin")

    let again = try CLI.run(["train", "--config", s.config, "--train"] + s.train + ["-o", model])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.stderr.contains("ctrkit: error: \(model) already holds a trained model (checkpoint.bin); pass --resume"), again.stderr)
    XCTAssertEqual(FileManager.default.contents(atPath: model + "/checkpoint.bin"), checkpoint, "the refused run left the model alone")

    let resumed = try CLI.run(["train", "--config", s.config, "--train"] + s.train + ["-o", model, "--resume", "--epochs", "2", "--json"])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    let r = try json(resumed.stdout)
    XCTAssertEqual(number(r["steps"]), 64, "the second epoch ran")
    XCTAssertEqual(number(r["examples"]), 1000, "examples trained by this invocation")
  }

  func testABadConfigPathFailsNamingIt() throws {
    let s = try setup(grouped: false)
    let missing = s.dir.file("no-such-experiment.yaml")
    let r = try CLI.run(["train", "--config", missing, "--train"] + s.train + ["-o", s.dir.file("model")])
    XCTAssertNotEqual(r.status, 0)
    XCTAssertTrue(r.stderr.hasPrefix("ctrkit: error: \(missing): "), r.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir.file("model")), "nothing was written")

    // A config whose features file is missing names that file.
    try "features: gone.yaml\nmodel: {type: lr}\n".write(toFile: s.dir.file("bad.yaml"), atomically: true, encoding: .utf8)
    let bad = try CLI.run(["train", "--config", s.dir.file("bad.yaml"), "--train"] + s.train + ["-o", s.dir.file("model")])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.stderr.contains(s.dir.file("gone.yaml")), bad.stderr)

    // A missing training file is named too.
    let gone = try CLI.run(["train", "--config", s.config, "--train", s.dir.file("nope.tfrecord"), "-o", s.dir.file("model2")])
    XCTAssertNotEqual(gone.status, 0)
    XCTAssertTrue(gone.stderr.contains(s.dir.file("nope.tfrecord")), gone.stderr)
  }
}
