import Foundation
import XCTest
import Features
@testable import CTR

/// Experiment config mistakes are reported with the file, the line and the key path, and a
/// message that says what is allowed.
final class ExperimentConfigErrorTests: XCTestCase {
  /// Lines 1–6 of every config below.
  static let header = """
    features:
      label: label
      columns:
        - {name: ad, type: hash_bucket, hash_bucket_size: 100}
        - {name: user, type: hash_bucket, hash_bucket_size: 100}
        - {name: x, type: numeric}
    """

  /// Loads `header + body` from a file and returns the error it raises.
  func configError(_ body: String, file: StaticString = #filePath, line: UInt = #line) -> (ConfigError?, String) {
    let scratch = ScratchDirectory()
    let path = scratch.write("experiment.yaml", Self.header + "\n" + body + "\n")
    do {
      _ = try ExperimentConfig.load(path: path)
      XCTFail("the config loaded without an error", file: file, line: line)
      return (nil, path)
    } catch let e as ConfigError {
      XCTAssertEqual(e.file, path, file: file, line: line)
      XCTAssertTrue(e.description.hasPrefix("\(path):\(e.line ?? -1):"), e.description, file: file, line: line)
      return (e, path)
    } catch {
      XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
      return (nil, path)
    }
  }

  func testTheValidConfigLoads() throws {
    let scratch = ScratchDirectory()
    let config = try ExperimentConfig.load(path: scratch.write("experiment.yaml", Self.header + """

      model: {type: fm, factors: 4, fm_columns: [ad, user]}
      optimizers:
        linear: {type: ftrl, alpha: 0.1}
        factors: {type: adagrad, learning_rate: 0.05}
        dense: {type: adam, learning_rate: 0.001}
      training: {batch_size: 64, epochs: 2}
      """))
    XCTAssertEqual(config.model.type, .fm)
    XCTAssertEqual(config.model.fmColumns, ["ad", "user"])
    XCTAssertEqual(config.optimizers.linear?.type, .ftrl)
    XCTAssertEqual(config.training.epochs, 2)
  }

  func testAnUnknownOptimizerTypeNamesTheKeyLineAndTheOptimizers() {
    let (e, _) = configError("""
      model: {type: lr}
      optimizers:
        linear:
          type: sgd
          learning_rate: 0.1
      """)
    XCTAssertEqual(e?.key, "optimizers.linear.type")
    XCTAssertEqual(e?.line, 10)
    let message = e?.message ?? ""
    XCTAssertTrue(message.contains("'sgd'"), message)
    for kind in ["ftrl", "adagrad", "adam", "group_ftrl", "group_adagrad"] { XCTAssertTrue(message.contains(kind), message) }
    XCTAssertFalse(message.contains("hash_bucket"), "the allowed values are optimizers, not column types: \(message)")
  }

  func testAnUnknownModelTypeNamesTheKeyLineAndTheModels() {
    let (e, _) = configError("""
      model:
        type: dcn
      """)
    XCTAssertEqual(e?.key, "model.type")
    XCTAssertEqual(e?.line, 8)
    let message = e?.message ?? ""
    XCTAssertTrue(message.contains("'dcn'") && message.contains("lr") && message.contains("fm"), message)
    XCTAssertFalse(message.contains("hash_bucket"), message)
  }

  func testAnUnknownKeyUnderTrainingNamesTheKeyAndLine() {
    let (e, _) = configError("""
      model: {type: lr}
      training:
        batch_size: 64
        learning_rate: 0.1
      """)
    XCTAssertEqual(e?.key, "training.learning_rate")
    XCTAssertEqual(e?.line, 10)
    XCTAssertTrue(e?.message.contains("unknown key") ?? false, e?.message ?? "")
  }

  func testAMisspelledTrainingKeySuggestsTheRightOne() {
    let (e, _) = configError("""
      model: {type: lr}
      training:
        epoch: 3
      """)
    XCTAssertEqual(e?.key, "training.epoch")
    XCTAssertEqual(e?.line, 9)
    XCTAssertTrue(e?.message.contains("did you mean 'epochs'?") ?? false, e?.message ?? "")
  }

  func testFMColumnsNamingAnUnknownColumnNamesTheEntryAndLine() {
    let (e, _) = configError("""
      model:
        type: fm
        fm_columns:
          - ad
          - item
      """)
    XCTAssertEqual(e?.key, "model.fm_columns[1]")
    XCTAssertEqual(e?.line, 11)
    XCTAssertTrue(e?.message.contains("'item' is not an id or sequence column") ?? false, e?.message ?? "")
  }

  func testFMColumnsNamingANumericColumnIsRejected() {
    let (e, _) = configError("""
      model: {type: fm, fm_columns: [ad, x]}
      """)
    XCTAssertEqual(e?.key, "model.fm_columns[1]")
    XCTAssertEqual(e?.line, 7)
    XCTAssertTrue(e?.message.contains("'x'") ?? false, e?.message ?? "")
  }

  func testAdamForTheLinearGroupNamesTheKeyLineAndTheAllowedRules() {
    let (e, _) = configError("""
      model: {type: lr}
      optimizers:
        linear: {type: adam, learning_rate: 0.001}
      """)
    XCTAssertEqual(e?.key, "optimizers.linear.type")
    XCTAssertEqual(e?.line, 9)
    let message = e?.message ?? ""
    XCTAssertTrue(message.contains("adam cannot update the linear group"), message)
    XCTAssertTrue(message.contains("ftrl, adagrad, group_ftrl, group_adagrad"), message)
  }

  func testFactorsOnAnLRModelNamesTheFactorsKeyAndLine() {
    let (e, _) = configError("""
      model:
        type: lr
        factors: 8
      """)
    XCTAssertEqual(e?.key, "model.factors")
    XCTAssertEqual(e?.line, 9)
    XCTAssertTrue(e?.message.contains("fm model only") ?? false, e?.message ?? "")
  }

  func testAnOutOfRangeOptimizerSettingNamesTheGroup() {
    let (e, _) = configError("""
      model: {type: lr}
      optimizers:
        linear: {type: ftrl, alpha: -1}
      """)
    XCTAssertEqual(e?.key, "optimizers.linear.alpha")
    XCTAssertEqual(e?.line, 9)
    XCTAssertTrue(e?.message.contains("must be a positive number, got -1.0") ?? false, e?.message ?? "")
  }

  func testAnOutOfRangeSettingLeftAtItsDefaultIsNamedInTheMessage() {
    // FTRL with learning_rate_power 0 needs no accumulator; with −0.5, n0 = 0, β = 0 and l2 = 0
    // the first step divides by zero. The offending setting is named though the config omits it.
    let (e, _) = configError("""
      model: {type: lr}
      optimizers:
        linear:
          type: ftrl
          beta: 0
          initial_accumulator_value: 0
          learning_rate_power: -0.5
      """)
    XCTAssertEqual(e?.key, "optimizers.linear.initial_accumulator_value")
    XCTAssertEqual(e?.line, 12)
    XCTAssertTrue(e?.message.contains("divides by zero") ?? false, e?.message ?? "")
    let (adagrad, _) = configError("""
      model: {type: fm}
      optimizers:
        factors: {type: adagrad, decay_period: 0}
      """)
    XCTAssertEqual(adagrad?.key, "optimizers.factors.decay_period")
    XCTAssertEqual(adagrad?.line, 9)
  }
}
