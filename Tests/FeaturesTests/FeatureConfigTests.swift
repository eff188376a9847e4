import XCTest
@testable import Features

final class FeatureConfigTests: XCTestCase {
  let criteoYAML = """
    label: label
    columns:
      - name: I1
        type: numeric
        dtype: int64
        normalizer: criteo
      - name: C1
        type: hash_bucket
        hash_bucket_size: 1000
        embedding: {dimension: 8, combiner: sum}
      - name: C1_x_C2
        type: crossed
        keys: [C1, C2]
        hash_bucket_size: 100
      - name: C2
        type: vocabulary
        top_k: 10
        num_oov_buckets: 1
    """

  func testYAMLAndJSONSpellingsOfAConfigLoadTheSame() throws {
    let yaml = try loadConfig(criteoYAML)
    let json = try loadConfig("""
      {"label": "label", "columns": [
        {"name": "I1", "type": "numeric", "dtype": "int64", "normalizer": "criteo"},
        {"name": "C1", "type": "hash_bucket", "hash_bucket_size": 1000, "embedding": {"dimension": 8, "combiner": "sum"}},
        {"name": "C1_x_C2", "type": "crossed", "keys": ["C1", "C2"], "hash_bucket_size": 100},
        {"name": "C2", "type": "vocabulary", "top_k": 10, "num_oov_buckets": 1}]}
      """, file: "test.json")
    XCTAssertEqual(yaml, json)
    XCTAssertEqual(yaml.columns[1].embedding?.combiner, .sum)
    XCTAssertEqual(yaml.columns[0].resolvedDType, .int64)
    XCTAssertEqual(yaml.columns[1].resolvedDType, .string)
  }

  /// A written config is the same bytes every time (JSONEncoder alone orders keys by a hash
  /// seeded per process): identifying keys first, the rest alphabetical; and it loads back equal.
  func testWrittenYAMLHasAFixedKeyOrderAndLoadsBackEqual() throws {
    let config = try loadConfig(criteoYAML)
    let text = try config.yamlText()
    let lines = text.split(separator: "\n").map(String.init)
    let firstColumn = lines.drop { !$0.hasPrefix("columns:") }.dropFirst().prefix(4).map { $0.trimmingCharacters(in: .whitespaces) }
    XCTAssertEqual(firstColumn, ["- name: \"I1\"", "type: \"numeric\"", "dtype: \"int64\"", "normalizer: \"criteo\""], text)
    let embedding = lines.drop { !$0.contains("embedding:") }.dropFirst().prefix(2).map { $0.trimmingCharacters(in: .whitespaces) }
    XCTAssertEqual(embedding, ["combiner: \"sum\"", "dimension: 8"], "alphabetical after the leading keys")
    XCTAssertEqual(try loadConfig(text), config)
  }

  func assertConfigError(_ yaml: String, line: Int?, key: String, contains text: String, file: StaticString = #filePath, sourceLine: UInt = #line) {
    XCTAssertThrowsError(try loadConfig(yaml), file: file, line: sourceLine) { error in
      guard let e = error as? ConfigError else { return XCTFail("\(error)", file: file, line: sourceLine) }
      XCTAssertEqual(e.line, line, "\(e)", file: file, line: sourceLine)
      XCTAssertEqual(e.key, key, "\(e)", file: file, line: sourceLine)
      XCTAssertTrue(e.message.contains(text), "\(e)", file: file, line: sourceLine)
      XCTAssertTrue(e.description.hasPrefix("test.yaml:"), e.description, file: file, line: sourceLine)
    }
  }

  func testAMisspelledKeyIsReportedWithItsLineAndASuggestion() {
    assertConfigError(criteoYAML.replacingOccurrences(of: "hash_bucket_size: 1000", with: "hash_bucket_sise: 1000"),
                      line: 9, key: "columns[1].hash_bucket_sise", contains: "did you mean 'hash_bucket_size'")
    assertConfigError("label: y\nlables: z\ncolumns: []\n", line: 2, key: "lables", contains: "unknown key")
  }

  func testWrongTypesAndValuesNameTheKeyAndLine() {
    assertConfigError(criteoYAML.replacingOccurrences(of: "hash_bucket_size: 1000", with: "hash_bucket_size: lots"),
                      line: 9, key: "columns[1].hash_bucket_size", contains: "expected an integer")
    assertConfigError(criteoYAML.replacingOccurrences(of: "type: numeric", with: "type: numerical"),
                      line: 4, key: "columns[0].type", contains: "is not one of numeric, bucketized")
    assertConfigError(criteoYAML.replacingOccurrences(of: "normalizer: criteo", with: "normalizer: log"),
                      line: 6, key: "columns[0].normalizer", contains: "zscore")
  }

  func testMissingAndInapplicableSettingsAreErrors() {
    assertConfigError(criteoYAML.replacingOccurrences(of: "    hash_bucket_size: 1000\n", with: ""),
                      line: 7, key: "columns[1]", contains: "needs 'hash_bucket_size'")
    assertConfigError(criteoYAML.replacingOccurrences(of: "normalizer: criteo", with: "boundaries: [1, 2]"),
                      line: 6, key: "columns[0].boundaries", contains: "does not apply to a numeric column")
    assertConfigError("columns:\n  - {name: a, type: numeric}\n", line: 1, key: "", contains: "'label' is missing")
  }

  func testSemanticErrorsPointAtTheColumn() {
    assertConfigError(criteoYAML.replacingOccurrences(of: "name: C2\n", with: "name: C1\n"),
                      line: 15, key: "columns[3].name", contains: "also the name of columns[1]")
    assertConfigError("label: y\ncolumns:\n  - {name: b, type: bucketized, boundaries: [3, 2]}\n",
                      line: 3, key: "columns[0].boundaries", contains: "strictly increasing")
    assertConfigError("label: y\ncolumns:\n  - {name: v, type: vocabulary, vocabulary: [a, b, a]}\n",
                      line: 3, key: "columns[0].vocabulary", contains: "'a' appears more than once")
    assertConfigError("label: y\ncolumns:\n  - {name: v, type: vocabulary, vocabulary: [a], num_oov_buckets: 2, default_value: 0}\n",
                      line: 3, key: "columns[0].default_value", contains: "mutually exclusive")
    assertConfigError("label: y\ncolumns:\n  - {name: u, type: identity, num_buckets: 5, default_value: 9}\n",
                      line: 3, key: "columns[0].default_value", contains: "[0, 5)")
    assertConfigError("label: y\ncolumns:\n  - {name: x, type: crossed, keys: [a, zz], hash_bucket_size: 10}\n  - {name: a, type: hash_bucket, hash_bucket_size: 3}\n",
                      line: 3, key: "columns[0].keys", contains: "'zz' is neither a column")
    assertConfigError("label: y\ncolumns:\n  - {name: a, type: hash_bucket, hash_bucket_size: 3, embedding: {dimension: 4, shared: t}}\n  - {name: b, type: hash_bucket, hash_bucket_size: 3, embedding: {dimension: 8, shared: t}}\n",
                      line: 4, key: "columns[1].embedding", contains: "shared table 't' has dimension 4")
    assertConfigError("label: y\ncolumns:\n  - {name: a, type: numeric, dtype: float}\n  - {name: b, type: bucketized, source: a, dtype: int64, boundaries: [1]}\n",
                      line: 4, key: "columns[1].dtype", contains: "feature 'a' is int64 here but float")
  }

  func testSyntaxErrorsGiveTheLine() {
    XCTAssertThrowsError(try loadConfig("label: y\ncolumns:\n  - {name: a, type: numeric\n")) { error in
      let e = error as! ConfigError
      XCTAssertNotNil(e.line)
      XCTAssertTrue(e.message.contains("syntax error"), "\(e)")
    }
  }

  func testAFittedConfigWritesAndReadsBackUnchanged() throws {
    var config = try loadConfig(criteoYAML)
    config.columns[3].vocabulary = ["x", "y", "日本"]
    config.columns[3].frequencies = [5, 3, 1]
    config.columns[0].statistics = NumericStatistics(count: 10, missing: 2, mean: 1.5, std: 0.25, min: -3, max: 1e9)
    config.fitted = true
    let dir = ScratchDirectory()
    for name in ["fitted.yaml", "fitted.json"] {
      try config.write(to: dir.file(name))
      XCTAssertEqual(try FeatureConfig.load(path: dir.file(name)), config, name)
    }
  }

  /// Vocabulary values with characters a YAML reader rejects raw (DEL, C1 controls, U+FFFE) or
  /// folds into a space inside quotes (NEL, LS, PS) are written escaped, in YAML and in JSON.
  func testValuesYAMLTakesOnlyEscapedReadBackUnchanged() throws {
    var config = try loadConfig(criteoYAML)
    config.columns[3].vocabulary = ["del\u{7F}", "nel\u{85}x", "c1\u{9B}", "ls\u{2028}ps\u{2029}", "x\u{FEFF}", "\u{FFFE}\u{FFFF}", "a\u{A0}é"]
    config.fitted = true
    let dir = ScratchDirectory()
    for name in ["fitted.yaml", "fitted.json"] {
      try config.write(to: dir.file(name))
      XCTAssertEqual(try FeatureConfig.load(path: dir.file(name)), config, name)
    }
  }
}
