import Foundation
import Records
import XCTest

/// `ctrkit convert`, `ctrkit synth` and `records cat --format csv|tsv`, run as a user runs them.
final class ConvertCLITests: XCTestCase {
  /// Real Criteo rows, read in place from ../shared/data beside the repository.
  func sharedData(_ relative: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    let path = root.appendingPathComponent("shared/data/" + relative).standardizedFileURL.path
    guard FileManager.default.fileExists(atPath: path) else {
      XCTFail("real test data not found at \(path): the tests read ../shared/data beside the repository root in place (CI checks ../shared out beside its clone)", file: file, line: line)
      throw CLIError(message: "missing \(path)")
    }
    return path
  }

  struct CLIError: Error { var message: String }

  func files(_ dir: String) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
      out[name] = FileManager.default.contents(atPath: dir + "/" + name)
    }
    return out
  }

  func testCriteoTSVToTFRecordAndBackWithRecordsCatGivesTheInput() throws {
    let dir = ScratchDirectory()
    let input = try sharedData("criteo/wide-resdnn_criteo_dev.tsv")
    let out = dir.file("out")
    let r = try CLI.run(["convert", "--input", input, "--format", "criteo", "--output", out, "--shards", "3"])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stdout.contains("converted 409 rows from 1 file"), r.stdout)
    XCTAssertTrue(r.stdout.contains("wrote 3 shard(s) (gzip, isal level 1"), r.stdout)
    let cat = try CLI.run(["records", "cat", "--format", "tsv", "--schema", "criteo", out + "/part-*.tfrecord.gz"])
    XCTAssertEqual(cat.status, 0, cat.stderr)
    XCTAssertEqual(cat.stdout, try String(contentsOfFile: input, encoding: .utf8))
    // The same with an explicit column list.
    let columns = (["label"] + (1...13).map { "I\($0)" } + (1...26).map { "C\($0)" }).joined(separator: ",")
    let cat2 = try CLI.run(["records", "cat", "--format", "tsv", "--columns", columns, out + "/part-00000.tfrecord.gz"])
    XCTAssertEqual(cat2.status, 0, cat2.stderr)
    XCTAssertTrue(try String(contentsOfFile: input, encoding: .utf8).hasPrefix(cat2.stdout))
    // Rerunning the same command finds the finished conversion and does nothing.
    let again = try CLI.run(["convert", "--input", input, "--format", "criteo", "--output", out, "--shards", "3"])
    XCTAssertEqual(again.status, 0, again.stderr)
    XCTAssertTrue(again.stdout.contains("is up to date"), again.stdout)
  }

  func testSynthWritesADeterministicSyntheticCriteoFileThatConvertsAndRoundTrips() throws {
    let dir = ScratchDirectory()
    let a = dir.file("a.tsv"), b = dir.file("b.tsv")
    let s = try CLI.run(["synth", "--rows", "3000", "--output", a, "--seed", "4", "--probabilities", dir.file("p.txt")])
    XCTAssertEqual(s.status, 0, s.stderr)
    XCTAssertTrue(s.stdout.contains("SYNTHETIC"), s.stdout)
    XCTAssertEqual(try CLI.run(["synth", "--rows", "3000", "--output", b, "--seed", "4", "--threads", "1"]).status, 0)
    XCTAssertEqual(FileManager.default.contents(atPath: a), FileManager.default.contents(atPath: b))
    let help = try CLI.run(["synth", "--help"])
    XCTAssertTrue(help.stdout.contains("SYNTHETIC") && help.stdout.contains("no row comes from"), help.stdout)
    let out = dir.file("out")
    let c = try CLI.run(["convert", "--input", a, "--format", "criteo", "--output", out, "--compression", "zstd", "--json"])
    XCTAssertEqual(c.status, 0, c.stderr)
    let summary = try JSONParser.parse(c.stdout)
    XCTAssertEqual(summary["rows"], .number("3000"))
    XCTAssertEqual(summary["rejected_rows"], .number("0"))
    let cat = try CLI.run(["records", "cat", "--format", "tsv", "--schema", "criteo", out + "/part-00000.tfrecord.zst"])
    XCTAssertEqual(cat.stdout, try String(contentsOfFile: a, encoding: .utf8))
  }

  func testCSVWithAHeaderIsInferredReportedAndPrintedBackAsCSV() throws {
    let dir = ScratchDirectory()
    let input = dir.file("in.csv")
    let text = "id,name,score,tags\n1,\"Smith, J.\",0.5,a^b\n2,\"say \"\"hi\"\"\",,c\n3,plain,2.25,\n"
    try text.write(toFile: input, atomically: true, encoding: .utf8)
    let out = dir.file("out")
    let r = try CLI.run(["convert", "--input", input, "--format", "csv", "--output", out, "--compression", "none"])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stderr.contains("inferred the schema from the header and 3 rows"), r.stderr)
    XCTAssertTrue(r.stderr.contains("id: int64") && r.stderr.contains("score: float") && r.stderr.contains("name: bytes"), r.stderr)
    let cat = try CLI.run(["records", "cat", "--format", "csv", "--header", "--columns", "id,name,score,tags", out + "/part-00000.tfrecord"])
    XCTAssertEqual(cat.status, 0, cat.stderr)
    XCTAssertEqual(cat.stdout, text)
    let bad = try CLI.run(["records", "cat", "--format", "csv", out + "/part-00000.tfrecord"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.stderr.contains("--columns"), bad.stderr)
  }

  func testErrorsNameTheMissingInputTheSchemaKeyAndTheRejectedLine() throws {
    let dir = ScratchDirectory()
    let missing = try CLI.run(["convert", "--input", dir.file("nope.tsv"), "--format", "criteo", "--output", dir.file("o1")])
    XCTAssertEqual(missing.status, 1)
    XCTAssertTrue(missing.stderr.contains("ctrkit: error: \(dir.file("nope.tsv")): cannot open the input file"), missing.stderr)

    let schema = dir.file("schema.yaml")
    try "columns:\n  - {name: a, type: int64}\n  - {name: b, typ: bytes}\n".write(toFile: schema, atomically: true, encoding: .utf8)
    let input = dir.file("in.tsv")
    try "1\tx\n2\ty\nz\tw\n4\tv\n".write(toFile: input, atomically: true, encoding: .utf8)
    let badSchema = try CLI.run(["convert", "--input", input, "--format", "tsv", "--schema", schema, "--output", dir.file("o2")])
    XCTAssertEqual(badSchema.status, 1)
    XCTAssertTrue(badSchema.stderr.contains("\(schema):3: 'columns[1].typ': unknown key"), badSchema.stderr)

    try "header: false\ncolumns:\n  - {name: a, type: int64}\n  - {name: b, type: bytes}\n".write(toFile: schema, atomically: true, encoding: .utf8)
    let out = dir.file("o3")
    let rejected = try CLI.run(["convert", "--input", input, "--format", "tsv", "--schema", schema, "--output", out])
    XCTAssertEqual(rejected.status, 1)
    XCTAssertTrue(rejected.stderr.contains("ctrkit: error: \(input):3: column 'a': 'z' is not an int64; more than 0 row(s)"), rejected.stderr)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), ["rejects.tsv"])
    let tolerated = try CLI.run(["convert", "--input", input, "--format", "tsv", "--schema", schema, "--output", out, "--max-errors", "1"])
    XCTAssertEqual(tolerated.status, 0, tolerated.stderr)
    XCTAssertTrue(tolerated.stdout.contains("rejected 1 row(s)"), tolerated.stdout)
    XCTAssertEqual(try String(contentsOfFile: out + "/rejects.tsv", encoding: .utf8),
                   "file\tline\treason\trow\n\(input)\t3\tcolumn 'a': 'z' is not an int64\tz\\tw\n")
  }

  func testAJobKilledMidwayAndRerunGivesTheSameShardsAndManifest() throws {
    let dir = ScratchDirectory()
    let input = dir.file("in.tsv")
    XCTAssertEqual(try CLI.run(["synth", "--rows", "4000", "--output", input, "--seed", "8"]).status, 0)
    let arguments = ["convert", "--input", input, "--format", "criteo", "--shards", "5"]
    let clean = dir.file("clean")
    XCTAssertEqual(try CLI.run(arguments + ["--output", clean]).status, 0)

    // Stop the job after two shards are finished and the third is being written, then kill -9.
    let crashed = dir.file("crashed")
    let p = Process()
    p.executableURL = CLI.binary
    p.arguments = arguments + ["--output", crashed]
    var env = ProcessInfo.processInfo.environment
    env["CTRKIT_TEST_STALL_AFTER_SHARDS"] = "2"
    p.environment = env
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(60)
    var names: [String] = []
    while Date() < deadline {
      names = (try? FileManager.default.contentsOfDirectory(atPath: crashed)) ?? []
      if names.contains("part-00001.tfrecord.gz") && names.contains(".part-00002.tfrecord.gz.partial") { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
    XCTAssertEqual(p.terminationReason, .uncaughtSignal)
    XCTAssertTrue(names.contains(".part-00002.tfrecord.gz.partial"), "\(names)")
    let left = try FileManager.default.contentsOfDirectory(atPath: crashed)
    XCTAssertFalse(left.contains("MANIFEST.json"), "a killed job has no manifest: \(left)")
    XCTAssertFalse(left.contains("part-00002.tfrecord.gz"), "the unfinished shard has only its hidden name: \(left)")

    let rerun = try CLI.run(arguments + ["--output", crashed])
    XCTAssertEqual(rerun.status, 0, rerun.stderr)
    XCTAssertEqual(try files(crashed), try files(clean))
  }

  /// Features materialised once (`convert --transform`, with and without `--pack-ids`) train the
  /// same model: the shards come with a config that reads them back as identity/numeric columns,
  /// and a deterministic run on them ends with the same training loss and evaluation as one on
  /// the raw shards.
  func testTransformedShardsWithTheirConfigTrainTheSameModelAsRawShards() throws {
    let dir = ScratchDirectory()
    let input = dir.file("synth.tsv"), evalInput = dir.file("eval.tsv")
    XCTAssertEqual(try CLI.run(["synth", "--rows", "4000", "--output", input, "--seed", "3"]).status, 0)
    XCTAssertEqual(try CLI.run(["synth", "--rows", "1000", "--output", evalInput, "--seed", "4"]).status, 0)
    for (tsv, out) in [(input, "raw"), (evalInput, "raw-eval")] {
      let r = try CLI.run(["convert", "--input", tsv, "--format", "criteo", "--output", dir.file(out), "--shards", "2"])
      XCTAssertEqual(r.status, 0, r.stderr)
    }
    try """
      label: label
      columns:
        - {name: I1, type: numeric, dtype: int64, normalizer: criteo}
        - {name: I2, type: bucketized, dtype: int64, quantiles: 8}
        - {name: C1, type: hash_bucket, hash_bucket_size: 1000}
        - {name: C2, type: vocabulary, min_count: 2, num_oov_buckets: 1}
        - {name: C6, type: vocabulary, top_k: 4, output: indicator}
        - {name: C1_x_C2, type: crossed, keys: [C1, C2], hash_bucket_size: 1000}
      """.write(toFile: dir.file("features.yaml"), atomically: true, encoding: .utf8)
    let fitted = dir.file("fitted.yaml")
    let analyze = try CLI.run(["analyze", "--config", dir.file("features.yaml"), "--data", dir.file("raw") + "/part-*", "--output", fitted])
    XCTAssertEqual(analyze.status, 0, analyze.stderr)
    for (tsv, out, packed) in [(input, "t", false), (evalInput, "t-eval", false), (input, "tp", true), (evalInput, "tp-eval", true)] {
      let r = try CLI.run(["convert", "--input", tsv, "--format", "criteo", "--output", dir.file(out), "--shards", "2",
                           "--compression", "none", "--transform", fitted] + (packed ? ["--pack-ids"] : []))
      XCTAssertEqual(r.status, 0, r.stderr)
    }
    XCTAssertTrue(FileManager.default.fileExists(atPath: dir.file("t/features.yaml")))
    let packedConfig = try String(contentsOfFile: dir.file("tp/features.yaml"), encoding: .utf8)
    XCTAssertTrue(packedConfig.contains("packed_ids:"), packedConfig)
    // The id columns' five entries became two; I1 and C6 (dense outputs) keep theirs.
    let packedReader = try TFRecordReader(path: dir.file("tp/part-00000.tfrecord"))
    let packedRecord = try Example(serialized: Array(try packedReader.next()!.data))
    XCTAssertEqual(Set(packedRecord.features!.feature.keys), ["label", "I1", "C6", "packed_ids", "packed_id_lengths"])
    guard case .int64List(let lengths)? = packedRecord.features!["packed_id_lengths"] else { return XCTFail("no packed_id_lengths") }
    XCTAssertEqual(lengths.count, 4, "one count per id column: I2, C1, C2, C1_x_C2")
    let experiment = """
      model: {type: fm, factors: 4}
      optimizers:
        linear: {type: ftrl, alpha: 0.1, beta: 1.0, l1: 0.1}
        factors: {type: adagrad, learning_rate: 0.05}
      training: {batch_size: 64, epochs: 2, shuffle_buffer: 500, threads: 1}
      """
    try ("features: fitted.yaml\n" + experiment).write(toFile: dir.file("raw.yaml"), atomically: true, encoding: .utf8)
    try ("features: t/features.yaml\n" + experiment).write(toFile: dir.file("t.yaml"), atomically: true, encoding: .utf8)
    try ("features: tp/features.yaml\n" + experiment).write(toFile: dir.file("tp.yaml"), atomically: true, encoding: .utf8)
    var results: [(train: JSONValue, eval: JSONValue)] = []
    for (config, data, evalData) in [("raw.yaml", "raw", "raw-eval"), ("t.yaml", "t", "t-eval"), ("tp.yaml", "tp", "tp-eval")] {
      let train = try CLI.run(["train", "--config", dir.file(config), "--train", dir.file(data) + "/part-*",
                               "--output", dir.file("model-" + data), "--json"])
      XCTAssertEqual(train.status, 0, train.stderr)
      let eval = try CLI.run(["eval", "--model", dir.file("model-" + data), "--data", dir.file(evalData) + "/part-*", "--json"])
      XCTAssertEqual(eval.status, 0, eval.stderr)
      results.append((try JSONParser.parse(train.stdout.trimmingCharacters(in: .whitespacesAndNewlines)),
                      try JSONParser.parse(eval.stdout.trimmingCharacters(in: .whitespacesAndNewlines))))
    }
    XCTAssertNotNil(results[0].train["train_logloss"])
    for other in [1, 2] {
      XCTAssertEqual(results[0].train["train_logloss"], results[other].train["train_logloss"], "run \(other)")
      XCTAssertEqual(results[0].train["tables"], results[other].train["tables"], "the same tables with the same rows")
      for key in ["count", "auc", "logloss"] {
        XCTAssertNotNil(results[0].eval[key], key)
        XCTAssertEqual(results[0].eval[key], results[other].eval[key], "\(key), run \(other)")
      }
    }
    let misuse = try CLI.run(["convert", "--input", input, "--format", "criteo", "--output", dir.file("x"), "--pack-ids"])
    XCTAssertNotEqual(misuse.status, 0)
    XCTAssertTrue(misuse.stderr.contains("--pack-ids needs --transform"), misuse.stderr)
  }

  func testTransformWritesWhatFeaturesApplyPrintsForTheRawShards() throws {
    let dir = ScratchDirectory()
    let input = dir.file("synth.tsv")
    XCTAssertEqual(try CLI.run(["synth", "--rows", "3000", "--output", input, "--seed", "9"]).status, 0)
    let raw = dir.file("raw")
    let r0 = try CLI.run(["convert", "--input", input, "--format", "criteo", "--output", raw, "--shards", "2"])
    XCTAssertEqual(r0.status, 0, r0.stderr)
    let config = dir.file("features.yaml")
    try """
      label: label
      columns:
        - {name: I1, type: numeric, dtype: int64, normalizer: criteo}
        - {name: I2, type: numeric, dtype: int64, normalizer: zscore}
        - {name: I3, type: bucketized, dtype: int64, quantiles: 5}
        - {name: C1, type: hash_bucket, hash_bucket_size: 100}
        - {name: C2, type: vocabulary, top_k: 10, num_oov_buckets: 2}
        - {name: C6, type: vocabulary, top_k: 4, output: indicator}
        - {name: C1_x_C2, type: crossed, keys: [C1, C2], hash_bucket_size: 1000}
      """.write(toFile: config, atomically: true, encoding: .utf8)

    // Unfitted, the config is refused before anything is written.
    let unfitted = try CLI.run(["convert", "--input", input, "--format", "criteo", "--output", dir.file("t"), "--transform", config])
    XCTAssertEqual(unfitted.status, 1)
    XCTAssertTrue(unfitted.stderr.contains("features.yaml: I2: the z-score normalizer's mean and std has not been fitted: run `ctrkit analyze`"), unfitted.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("t")))

    let fitted = dir.file("fitted.yaml")
    let analyze = try CLI.run(["analyze", "--config", config, "--data", raw + "/part-*.tfrecord.gz", "--output", fitted])
    XCTAssertEqual(analyze.status, 0, analyze.stderr)
    let out = dir.file("t")
    let t = try CLI.run(["convert", "--input", input, "--format", "criteo", "--output", out, "--shards", "3",
                         "--transform", fitted, "--threads", "2"])
    XCTAssertEqual(t.status, 0, t.stderr)
    XCTAssertTrue(t.stdout.contains("converted 3000 rows"), t.stdout)
    XCTAssertTrue(t.stdout.contains("wrote 3 shard(s) (transformed with \(fitted), gzip"), t.stdout)
    let manifest = try JSONParser.parse(String(contentsOfFile: out + "/MANIFEST.json", encoding: .utf8))
    XCTAssertEqual(manifest["transform"]?["config"], .string(fitted))

    let apply = try CLI.run(["features", "apply", "--config", fitted, "--data", raw + "/part-00000.tfrecord.gz",
                             raw + "/part-00001.tfrecord.gz"])
    XCTAssertEqual(apply.status, 0, apply.stderr)
    let printed = apply.stdout.split(separator: "\n").map(String.init)
    var records: [[String: Feature]] = []
    for shard in try FileManager.default.contentsOfDirectory(atPath: out).filter({ $0.hasPrefix("part-") }).sorted() {
      let reader = try TFRecordReader(path: out + "/" + shard)
      while let rec = try reader.next() { records.append(try Example(serialized: Array(rec.data)).features!.feature) }
    }
    XCTAssertEqual(printed.count, 3000)
    XCTAssertEqual(records.count, 3000)
    func floats(_ v: JSONValue?) -> [Float]? {
      guard case .array(let a)? = v else { return nil }
      return a.map { if case .number(let s) = $0 { return Float(s)! } else { return .nan } }
    }
    func ints(_ v: JSONValue?) -> [Int64]? {
      guard case .array(let a)? = v else { return nil }
      return a.map { if case .number(let s) = $0 { return Int64(s)! } else { return .min } }
    }
    for (i, (line, record)) in zip(printed, records).enumerated() {
      let want = try JSONParser.parse(line)
      guard case .int64List(let label)? = record["label"], case .number(let l)? = want["label"] else { return XCTFail("record \(i)") }
      XCTAssertEqual(label.map(Float.init), [Float(l)!], "record \(i)")
      for name in ["I1", "I2", "C6"] {
        guard case .floatList(let got)? = record[name] else { return XCTFail("record \(i) lacks \(name)") }
        XCTAssertEqual(got, floats(want["dense"]?[name]), "record \(i) \(name)")
      }
      for name in ["I3", "C1", "C2", "C1_x_C2"] {
        guard case .int64List(let got)? = record[name] else { return XCTFail("record \(i) lacks \(name)") }
        XCTAssertEqual(got, ints(want["ids"]?[name]), "record \(i) \(name)")
      }
      XCTAssertEqual(record.count, 8, "record \(i): the label and seven columns")
    }

    let help = try CLI.run(["convert", "--help"])
    XCTAssertTrue(help.stdout.contains("--transform <fitted-config>"), help.stdout)
    XCTAssertTrue(help.stdout.contains("<name>_weights"), help.stdout)
  }
}
