import Foundation
import Records
import XCTest

final class FeaturesCLITests: XCTestCase {
  func writeData(_ dir: ScratchDirectory) throws -> String {
    let path = dir.file("data.tfrecord.gz")
    let w = try TFRecordWriter(path: path, compression: .gzip)
    for i in 0..<400 {
      var m: [String: Feature] = ["label": .int64List([Int64(i % 3 == 0 ? 1 : 0)]),
                                  "site": .bytesList([Array("site\(i % 7)".utf8)])]
      if i % 5 != 0 { m["count"] = .int64List([Int64(i % 50)]) }
      try w.write(Example(m).serialized())
    }
    try w.close()
    return path
  }

  func testAnalyzeWritesAFittedConfigThatFeaturesApplyUses() throws {
    let dir = ScratchDirectory()
    let data = try writeData(dir)
    let config = dir.file("features.yaml")
    try """
      label: label
      columns:
        - {name: count, type: numeric, dtype: int64, normalizer: zscore}
        - {name: count_q, type: bucketized, source: count, dtype: int64, quantiles: 4}
        - {name: site, type: vocabulary, top_k: 5, num_oov_buckets: 1, embedding: {dimension: 4}}
        - {name: site_x_q, type: crossed, keys: [site, count_q], hash_bucket_size: 100}
      """.write(toFile: config, atomically: true, encoding: .utf8)
    let fitted = dir.file("fitted.yaml")
    let analyze = try CLI.run(["analyze", "--config", config, "--data", data, "--output", fitted])
    XCTAssertEqual(analyze.status, 0, analyze.stderr)
    XCTAssertTrue(analyze.stdout.contains("analyzed 400 records"), analyze.stdout)
    XCTAssertTrue(analyze.stdout.contains("site: kept 5 of 7 distinct values"), analyze.stdout)
    let text = try String(contentsOfFile: fitted, encoding: .utf8)
    XCTAssertTrue(text.contains("fitted: true"))
    let apply = try CLI.run(["features", "apply", "--config", fitted, "--data", data, "--limit", "3"])
    XCTAssertEqual(apply.status, 0, apply.stderr)
    let lines = apply.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 3)
    let first = try JSONParser.parse(lines[0])
    XCTAssertEqual(first["label"], .number("1.0"))
    XCTAssertEqual(first["record"], .number("0"))
    guard case .array(let dense)? = first["dense"]?["count"] else { return XCTFail(apply.stdout) }
    XCTAssertEqual(dense.count, 1)
    guard case .array(let siteIds)? = first["ids"]?["site"] else { return XCTFail(apply.stdout) }
    XCTAssertEqual(siteIds.count, 1)
    XCTAssertNotNil(first["ids"]?["site_x_q"])
  }

  /// A config with nothing to fit is still analyzed: the data is read once (so a bad file is
  /// reported now), with an empty parse spec. That spec crashed the columnar parse's record
  /// close, which took the one allocated word of an empty column set for eight missing columns.
  func testAnalyzeWithNothingToFitReadsTheDataAndWritesTheConfig() throws {
    let dir = ScratchDirectory()
    let data = try writeData(dir)
    let config = dir.file("hashed.yaml")
    try "label: label\ncolumns:\n  - {name: site, type: hash_bucket, hash_bucket_size: 16}\n"
      .write(toFile: config, atomically: true, encoding: .utf8)
    let fitted = dir.file("fitted.yaml")
    let r = try CLI.run(["analyze", "--config", config, "--data", data, "--output", fitted])
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertTrue(r.stdout.contains("analyzed 400 records"), r.stdout)
    XCTAssertTrue(try String(contentsOfFile: fitted, encoding: .utf8).contains("fitted: true"))
  }

  func testConfigErrorsAreReportedWithFileLineAndKey() throws {
    let dir = ScratchDirectory()
    let data = try writeData(dir)
    let config = dir.file("bad.yaml")
    try "label: label\ncolumns:\n  - name: site\n    type: hash_bucket\n    hash_bucket_sise: 10\n"
      .write(toFile: config, atomically: true, encoding: .utf8)
    let r = try CLI.run(["analyze", "--config", config, "--data", data, "--output", dir.file("out.yaml")])
    XCTAssertEqual(r.status, 1)
    XCTAssertTrue(r.stderr.contains("bad.yaml:5:5: columns[0].hash_bucket_sise: unknown key (did you mean 'hash_bucket_size'?)"), r.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("out.yaml")))
  }

  func testAKindMismatchInTheDataNamesTheFeatureFileAndRecord() throws {
    let dir = ScratchDirectory()
    let data = try writeData(dir)
    let config = dir.file("f.yaml")
    try "label: label\ncolumns:\n  - {name: count, type: numeric, dtype: float}\n".write(toFile: config, atomically: true, encoding: .utf8)
    let r = try CLI.run(["features", "apply", "--config", config, "--data", data])
    XCTAssertEqual(r.status, 1)
    XCTAssertTrue(r.stderr.contains("data.tfrecord.gz: record 1"), r.stderr)
    XCTAssertTrue(r.stderr.contains("feature 'count'"), r.stderr)
    XCTAssertTrue(r.stderr.contains("int64_list but the spec expects float_list"), r.stderr)
  }
}
