import XCTest
@testable import Features

/// A fitted config's long lists are read from the text (`FlowLists`) rather than composed node by
/// node: the two readings must give the same config, or the same error, for every input.
final class ConfigListReadingTests: XCTestCase {
  /// A reading's result: the config, or the error's description.
  enum Outcome: Equatable {
    case config(FeatureConfig)
    case error(String)

    func get() throws -> FeatureConfig {
      switch self {
      case .config(let c): return c
      case .error(let e): throw ConfigError(file: "", key: "", e)
      }
    }
  }

  /// Loads `text` both ways; also returns how many lists the direct reading took from the text.
  func bothReadings(_ text: String, file: String = "test.yaml") -> (direct: Outcome, composed: Outcome, listsRead: Int) {
    func load(_ direct: Bool) -> (Outcome, Int) {
      let doc: ConfigDocument
      do {
        doc = try ConfigDocument(file: file, text: text, readingListsDirectly: direct)
      } catch {
        return (.error("\(error)"), 0)
      }
      do {
        return (.config(try FeatureConfig.load(doc, at: [])), doc.flowLists.lists.count)
      } catch {
        return (.error("\(error)"), doc.flowLists.lists.count)
      }
    }
    let (direct, listsRead) = load(true)
    return (direct, load(false).0, listsRead)
  }

  /// Vocabulary values that exercise every escape and every class of character the reader
  /// distinguishes, drawn from a seeded generator.
  func randomVocabulary(_ count: Int, seed: UInt64) -> [String] {
    var state = seed
    func next() -> UInt64 {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      return state >> 33
    }
    let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "#", ",", "[", "]", ":", "'", "{", "}", "-",
                                  "\n", "\r", "\t", "\u{1}", "\u{1F}", "\u{7F}", "\u{80}", "\u{85}", "\u{9F}", "\u{A0}",
                                  "é", "ß", "日", "本", "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFD}", "\u{FFFE}", "\u{FFFF}",
                                  "\u{E000}", "\u{D7FF}", "😀", "\u{10FFFF}"]
    var seen = Set<String>()
    var out: [String] = []
    while out.count < count {
      var s = ""
      for _ in 0..<Int(next() % 7) { s.unicodeScalars.append(pool[Int(next() % UInt64(pool.count))]) }
      // The composed reading drops a leading U+FEFF (`testValuesOnlyTheDirectReadingKeeps`).
      if s.unicodeScalars.first == "\u{FEFF}" { s = "x" + s }
      if seen.insert(s).inserted { out.append(s) }
    }
    return out
  }

  func fittedConfig() throws -> FeatureConfig {
    var config = try loadConfig("""
      label: y
      columns:
        - {name: b, type: bucketized, source: x, dtype: float, boundaries: [0.5]}
        - {name: v, type: vocabulary, top_k: 10, num_oov_buckets: 1}
        - {name: w, type: vocabulary, top_k: 10, num_oov_buckets: 2}
      """)
    config.columns[0].boundaries = [-1e30, -2.5, -1.1754944e-38, 0, 1.5e-7, 0.3333333, 7, 3.4028235e38]
    config.columns[1].vocabulary = randomVocabulary(600, seed: 1)
    config.columns[1].frequencies = (0..<600).map { 600 - $0 + ($0 == 0 ? Int(Int32.max) * 4 : 0) }
    config.columns[2].vocabulary = ["日本", "null", "no", "1.0", "", " lead", "trail ", "a\"b"]
    config.fitted = true
    return config
  }

  /// What `ctrkit analyze` writes: every list is read from the text, and both readings give the
  /// config that was written (including values libyaml would reject or fold if written raw).
  func testAWrittenFittedConfigReadsTheSameBothWays() throws {
    let config = try fittedConfig()
    let text = try config.yamlText()
    let r = bothReadings(text)
    XCTAssertEqual(r.listsRead, 4, "the boundaries, both vocabularies and the frequencies")
    XCTAssertEqual(try r.direct.get(), config)
    XCTAssertEqual(try r.composed.get(), config)
  }

  /// The same config written as pretty-printed JSON (`"vocabulary" : [` with one item per line,
  /// `\/` escapes, and the characters a YAML reader does not take raw escaped as in YAML).
  func testAWrittenJSONConfigReadsTheSameBothWays() throws {
    let config = try fittedConfig()
    let dir = ScratchDirectory()
    try config.write(to: dir.file("fitted.json"))
    let text = try String(contentsOfFile: dir.file("fitted.json"), encoding: .utf8)
    let r = bothReadings(text, file: "fitted.json")
    XCTAssertEqual(r.listsRead, 4)
    XCTAssertEqual(try r.direct.get(), config)
    XCTAssertEqual(try r.composed.get(), config)
  }

  /// Lists outside the written form are left to libyaml, alone or (when a list read from the
  /// text is not a column's) with the whole document; the result is the same either way. The
  /// direct reading ignores indentation inside a list; so does libyaml (the last three cases).
  func testListsOutsideTheWrittenFormReadTheSameBothWays() {
    let head = "label: y\ncolumns:\n"
    // Most cases are one vocabulary column; its first two lines.
    let column = head + "  - name: v\n    type: vocabulary\n"
    let cases: [(String, String, Int)] = [
      ("plain and single-quoted items", column + "    vocabulary: [a, 'b', \"c\"]\n    frequencies: [3, 2, 1]\n", 1),
      ("a comment inside", column + "    vocabulary: [\"a\", # why\n      \"b\"]\n", 0),
      ("a trailing comma", column + "    vocabulary: [\"a\", \"b\",]\n", 0),
      ("an escape JSON lacks", column + "    vocabulary: [\"a\\x41\", \"\\N\"]\n", 0),
      ("a multi-line plain number", column + "    vocabulary: [\"a\", \"b\"]\n    frequencies: [1\n      2, 3]\n", 1),
      ("CRLF line ends", (column + "    vocabulary: [\"a\",\n      \"b\"]\n").replacingOccurrences(of: "\n", with: "\r\n"), 1),
      ("a lone CR", head + "  - name: v\n    type: vocabulary\r    vocabulary: [\"a\", \"b\"]\n", 0),
      ("a key in a block scalar", head + "  - name: |\n      vocabulary: [\"x\"]\n    type: vocabulary\n    vocabulary: [\"a\"]\n", 0),
      ("a list under another key", "label: y\ncolumns: []\nextra:\n  vocabulary: [\"a\"]\n", 0),
      ("a list of a column of a nested columns key", column + "    vocabulary: [\"a\"]\n    embedding:\n      columns:\n        - vocabulary: [\"q\"]\n", 0),
      ("a bad integer", column + "    vocabulary: [\"a\", \"b\"]\n    frequencies: [1, x]\n", 1),
      ("a bad number", head + "  - name: b\n    type: bucketized\n    source: x\n    dtype: float\n    boundaries: [1, 2e]\n", 0),
      ("a duplicate in a list read directly", column + "    vocabulary: [\"a\", \"b\", \"a\"]\n", 1),
      ("a syntax error after a list", column + "    vocabulary: [\"a\"]\n  - {name: w\n", 0),
      ("a surrogate escape", column + "    vocabulary: [\"\\uD800\"]\n", 0),
      ("continuation lines indented less than the key", column + "    vocabulary: [\"a\",\n  \"b\",\n \"c\"]\n", 1),
      ("a continuation line at column 0", column + "    vocabulary: [\"a\",\n\"b\"]\n", 1),
      ("text after a multi-line list, on its last line", column + "    vocabulary: [\"a\",\n      \"b\"] x\n", 0),
      ("an error below a multi-line list of CRLF lines", (column + "    vocabulary: [\"a\",\n      \"b\",\n   \"c\"]  # why\n    bogus: 1\n").replacingOccurrences(of: "\n", with: "\r\n"), 1),
      ("a closing bracket at column 0", column + "    vocabulary: [\"a\",\n    \"b\"\n]\n", 1),
    ]
    for (name, text, listsRead) in cases {
      let r = bothReadings(text)
      XCTAssertEqual(r.direct, r.composed, name)
      XCTAssertEqual(r.listsRead, listsRead, name)
    }
  }

  /// A list read from the text keeps the lines of what follows, so errors after it are located
  /// as before: here a duplicate vocabulary entry three lines below a multi-line list.
  func testErrorsBelowAListReadFromTheTextKeepTheirLine() {
    let text = """
      label: y
      columns:
        - name: v
          type: vocabulary
          vocabulary: ["a",
            "b",
            "c"]
          num_oov_buckets: 1
          default_value: 0

      """
    let r = bothReadings(text)
    XCTAssertEqual(r.listsRead, 1)
    XCTAssertEqual(r.direct, r.composed)
    guard case .error(let e) = r.direct else { return XCTFail("expected an error: \(r.direct)") }
    XCTAssertTrue(e.hasPrefix("test.yaml:9:"), e)
  }

  /// A value the composed reading cannot give back and the direct reading of a written config
  /// does: a leading U+FEFF, which libyaml or Yams drops (here making two entries equal).
  func testALeadingByteOrderMarkIsKeptByTheDirectReading() throws {
    var config = try fittedConfig()
    config.columns[2].vocabulary = ["\u{FEFF}x", "x", "a\u{0}b"]
    let r = bothReadings(try config.yamlText())
    XCTAssertEqual(try r.direct.get(), config)
    guard case .error(let e) = r.composed else { return XCTFail("the composed reading kept it: \(r.composed)") }
    XCTAssertTrue(e.hasSuffix("columns[2].vocabulary: 'x' appears more than once"), e)
  }
}
