import XCTest
@testable import Features
import Records

final class TransformerTests: XCTestCase {
  func testNumericColumnMatchesTensorFlowsDefaultThenNormalizerOrder() throws {
    // TF: numeric_column('n', default_value=-1.5, normalizer_fn=lambda x: (x-3)/2); z-score with
    // mean 3 and std 2 is the same function.
    let golden = try FeatureFixtures.json("numeric_column.json")
    var column = ColumnConfig(name: "n", type: .numeric)
    column.default = -1.5
    column.normalizer = .zscore
    column.statistics = NumericStatistics(count: 1, missing: 0, mean: 3, std: 2, min: 0, max: 10)
    let config = FeatureConfig(label: FeatureRef(name: "y"), columns: [column])
    let inputs: [Feature?] = golden["inputs"]!.asArray.map { $0.asDouble.map { .floatList([Float($0)]) } }
    let examples = inputs.map { f -> Example in
      var m: [String: Feature] = ["y": .int64List([0])]
      if let f { m["n"] = f }
      return Example(m)
    }
    let (t, batch) = try transformExamples(config, examples)
    let slot = t.layout.denseSlot("n")!
    XCTAssertEqual((0..<batch.count).map { batch.denseRow($0)[slot.offset] }, golden["transformed"]!.asArray.map { Float($0.asDouble!) })
  }

  func testIdentityIdsKeepRangeMissingAndDefaultRules() throws {
    // categorical_column_with_identity: ids in [0, n) pass, -1 is missing, others take
    // default_value (or fail without one); a var-len row keeps every valid id in order.
    let config = try loadConfig("""
      label: y
      columns:
        - {name: u, type: identity, num_buckets: 10, default_value: 5}
        - {name: v, type: identity, num_buckets: 10}
      """)
    // Single ids at both ends of the range and just past it: the one-id fast path's bounds.
    let rows: [[Int64]] = [[3], [-1], [12], [9, -1, 4, 10], [], [0], [9], [10]]
    let examples = rows.map { Example(["y": .int64List([0]), "u": .int64List($0), "v": .int64List([1])]) }
    let (_, batch) = try transformExamples(config, examples)
    XCTAssertEqual((0..<batch.count).map { ids(batch, "u", $0) }, [[3], [], [5], [9, 4, 5], [], [0], [9], [5]])
    XCTAssertEqual((0..<batch.count).map { ids(batch, "v", $0) }, Array(repeating: [1], count: rows.count))

    let bad = [Example(["y": .int64List([0]), "u": .int64List([1]), "v": .int64List([2])]),
               Example(["y": .int64List([0]), "u": .int64List([1]), "v": .int64List([2, 10])])]
    XCTAssertThrowsError(try transformExamples(config, bad)) { error in
      let text = "\(error)"
      XCTAssertEqual((error as? FeatureError)?.column, "v", text)
      XCTAssertTrue(text.contains("value 10 is outside [0, 10)"), text)
      XCTAssertEqual((error as? FeatureError)?.record, 1, text)
    }
  }

  func testTheFeatureColumnCrossMatchesTensorFlow() throws {
    // crossed_column([bucketized(price, [10, 100]), 'country', identity('u', 50)], 997)
    let golden = try FeatureFixtures.json("cross_hashed.json")["feature_column_crossed"]!
    let config = try loadConfig("""
      label: y
      columns:
        - {name: price_b, type: bucketized, source: price, boundaries: [10, 100]}
        - {name: country, type: hash_bucket, hash_bucket_size: 10}
        - {name: u, type: identity, num_buckets: 50}
        - {name: cross, type: crossed, keys: [price_b, country, u], hash_bucket_size: 997}
      """)
    let f = golden["features"]!
    let prices = f["price"]!.asArray.map { Float($0.asDouble!) }
    let countries = f["country"]!.asArray.map { $0.asString! }
    let users = f["u"]!.asArray.map { $0.asInt64! }
    let examples = (0..<prices.count).map { i in
      Example(["y": .int64List([1]), "price": .floatList([prices[i]]), "country": .bytesList([Array(countries[i].utf8)]),
               "u": .int64List([users[i]])])
    }
    let (_, batch) = try transformExamples(config, examples)
    let expectedRows = golden["indices"]!.asArray.map { Int($0.asArray[0].asInt64!) }
    let expected = golden["values"]!.asArray.map { $0.asInt64! }
    var got: [Int64] = [], rows: [Int] = []
    for r in 0..<batch.count { for id in ids(batch, "cross", r) { got.append(id); rows.append(r) } }
    XCTAssertEqual(got, expected)
    XCTAssertEqual(rows, expectedRows, "row 3's raw '' is hashed, not dropped, as in TensorFlow")
  }

  func testMultiValuedCrossesFollowTensorFlowsOdometerOrder() throws {
    let golden = try FeatureFixtures.json("cross_hashed.json")["multi_valued_sparse"]!
    let config = try loadConfig("""
      label: y
      columns:
        - {name: A, type: hash_bucket, hash_bucket_size: 5}
        - {name: B, type: hash_bucket, hash_bucket_size: 5}
        - {name: C, type: hash_bucket, dtype: int64, hash_bucket_size: 5}
        - {name: ABC, type: crossed, keys: [A, B, C], hash_bucket_size: 100}
      """)
    func s(_ v: [String]) -> Feature { .bytesList(v.map { Array($0.utf8) }) }
    let examples = [
      Example(["y": .int64List([0]), "A": s(["a", "b"]), "B": s(["x", "y", "z"]), "C": .int64List([7])]),
      Example(["y": .int64List([0]), "A": s(["c"]), "B": s(["w"]), "C": .int64List([8, 9])]),
    ]
    let (_, batch) = try transformExamples(config, examples)
    XCTAssertEqual(ids(batch, "ABC", 0) + ids(batch, "ABC", 1), golden["values"]!.asArray.map { $0.asInt64! })
  }

  func testVocabularyColumnsMatchTensorFlowsLookups() throws {
    let golden = try FeatureFixtures.json("vocabulary.json")
    let vocab = golden["string_vocab_list"]!.asArray.map { $0.asString! }
    let queries = golden["queries"]!.asArray.map { $0.asString! }
    let results = golden["results"]!
    for (key, oov, def) in [("list_oov3", 3, nil as Int64?), ("list_default_-1", 0, -1), ("list_default_99", 0, 99)] {
      var c = ColumnConfig(name: "q", type: .vocabulary)
      c.vocabulary = vocab
      c.numOOVBuckets = oov
      c.defaultValue = def
      let examples = queries.map { Example(["y": .int64List([0]), "q": .bytesList([Array($0.utf8)])]) }
      let (_, batch) = try transformExamples(FeatureConfig(label: FeatureRef(name: "y"), columns: [c]), examples)
      for (i, expected) in results[key]!.asArray.enumerated() {
        // null: TF drops the dense '' input; -1: pruned like TF's safe lookups do.
        let want: [Int64] = expected.asInt64.map { $0 < 0 ? [] : [$0] } ?? []
        XCTAssertEqual(ids(batch, "q", i), want, "\(key) query '\(queries[i])'")
      }
    }
    let ints = golden["int_vocab_list"]!.asArray.map { $0.asString! }
    let intQueries = golden["int_queries"]!.asArray.map { $0.asInt64! }
    var c = ColumnConfig(name: "k", type: .vocabulary)
    c.dtype = .int64
    c.vocabulary = ints
    c.numOOVBuckets = 4
    let (_, batch) = try transformExamples(FeatureConfig(label: FeatureRef(name: "y"), columns: [c]),
                                           intQueries.map { Example(["y": .int64List([0]), "k": .int64List([$0])]) })
    for (i, expected) in golden["int_results_oov4"]!.asArray.enumerated() {
      XCTAssertEqual(ids(batch, "k", i), expected.asInt64.map { [$0] } ?? [], "int query \(intQueries[i])")
    }
  }

  func testHashBucketIdsAreTensorFlowsAndZeroBucketsKeepTheFingerprint() throws {
    let config = try loadConfig("""
      label: y
      columns:
        - {name: s, type: hash_bucket, hash_bucket_size: 1000}
        - {name: n, type: hash_bucket, dtype: int64, hash_bucket_size: 1000}
        - {name: full, type: hash_bucket, source: s, hash_bucket_size: 0}
      """)
    let (_, batch) = try transformExamples(config, [
      Example(["y": .int64List([1]), "s": .bytesList([Array("hello".utf8), Array("world".utf8)]), "n": .int64List([-5, 42])]),
    ])
    XCTAssertEqual(ids(batch, "s", 0), ["hello", "world"].map { w in Array(w.utf8).withUnsafeBytes { TFHash.hashBucketFast($0, buckets: 1000) } })
    XCTAssertEqual(ids(batch, "n", 0), [-5, 42].map { TFHash.hashBucket(int64: $0, buckets: 1000) })
    XCTAssertEqual(ids(batch, "full", 0)[0], Int64(FarmHash.fingerprint64("hello") % UInt64(Int64.max)))
    XCTAssertEqual(batch.labels[0], 1)
  }

  func testMissingFeaturesTakeTheColumnsDefault() throws {
    let config = try loadConfig("""
      label: {name: y, dtype: float}
      weight: w
      columns:
        - {name: n, type: numeric, default: 7}
        - {name: m, type: numeric}
        - {name: b, type: bucketized, source: n, boundaries: [0, 10]}
        - {name: bd, type: bucketized, source: n, boundaries: [0, 10], default: 20}
        - {name: h, type: hash_bucket, hash_bucket_size: 10}
      """)
    let (t, batch) = try transformExamples(config, [Example(["y": .floatList([0.5])])])
    XCTAssertEqual(batch.denseRow(0)[t.layout.denseSlot("n")!.offset], 7)
    XCTAssertEqual(batch.denseRow(0)[t.layout.denseSlot("m")!.offset], 0)
    XCTAssertEqual(ids(batch, "b", 0), [3], "no default: the extra 'missing' bucket")
    XCTAssertEqual(ids(batch, "bd", 0), [2])
    XCTAssertEqual(ids(batch, "h", 0), [], "a missing categorical feature has no ids")
    XCTAssertEqual(batch.labels[0], 0.5)
    XCTAssertEqual(batch.weights[0], 1)
  }

  func testWeightedIndicatorIdentityAndSequenceColumns() throws {
    let config = try loadConfig("""
      label: y
      group: {name: user, dtype: int64}
      columns:
        - {name: tags, type: vocabulary, vocabulary: [a, b, c], weight_feature: tag_w}
        - {name: tag_hot, type: vocabulary, source: tags, vocabulary: [a, b, c], output: indicator}
        - {name: slot, type: identity, num_buckets: 4, default_value: 0}
        - {name: hist, type: sequence, dtype: int64, id_type: identity, num_buckets: 100, max_length: 3}
      """)
    let (t, batch) = try transformExamples(config, [
      Example(["y": .int64List([1]), "user": .int64List([77]), "tags": .bytesList([[0x61], [0x63], [0x61]]),
               "tag_w": .floatList([0.5, 2, 1]), "slot": .int64List([9]), "hist": .int64List([1, 2, 3, 4, 5])]),
    ])
    let tags = batch.sparse(t.layout.sparseIndex("tags")!)
    XCTAssertEqual(Array(tags.ids), [0, 2, 0])
    XCTAssertEqual(Array(tags.weights), [0.5, 2, 1])
    let hot = t.layout.denseSlot("tag_hot")!
    XCTAssertEqual(Array(batch.denseRow(0)[hot.offset..<(hot.offset + hot.width)]), [2, 0, 1], "indicator counts duplicates")
    XCTAssertEqual(ids(batch, "slot", 0), [0], "out of range takes default_value")
    let hist = batch.sequence(0)
    XCTAssertEqual(Array(hist.ids), [3, 4, 5], "the most recent three")
    XCTAssertEqual(hist.lengths[0], 3)
    XCTAssertEqual(batch.groups[0], 77)
  }

  func testDataProblemsNameTheColumnFeatureFileAndRecord() throws {
    let dir = ScratchDirectory()
    let path = try dir.tfrecord("data.tfrecord", [
      Example(["y": .int64List([0]), "u": .int64List([1])]),
      Example(["y": .int64List([0]), "u": .int64List([12])]),
    ])
    let config = try loadConfig("label: y\ncolumns:\n  - {name: user, source: u, type: identity, num_buckets: 10}\n")
    let t = try Transformer(config: config)
    let reader = ExampleReader(paths: [path], spec: t.spec, threads: 1)
    let batch = t.makeBatch()
    XCTAssertThrowsError(try t.transform(reader.next()!, into: batch)) { error in
      XCTAssertEqual("\(error)", "\(path): record 1: column 'user' (feature 'u'): value 12 is outside [0, 10) and the column has no default_value")
    }
    // The data's kind differs from the config: the parser names the feature, file and record.
    let floatPath = try dir.tfrecord("float.tfrecord", [Example(["y": .int64List([0]), "u": .floatList([1])])])
    XCTAssertThrowsError(try ExampleReader(paths: [floatPath], spec: t.spec, threads: 1).next()) { error in
      let e = error as! RecordsError
      XCTAssertEqual(e.field, "u")
      XCTAssertEqual(e.record, 0)
      XCTAssertEqual(e.path, floatPath)
      XCTAssertTrue(e.message.contains("float_list but the spec expects int64_list"))
    }
  }

  func testUnfittedColumnsAndMissingVocabularyFilesAreClearErrors() throws {
    XCTAssertThrowsError(try Transformer(config: loadConfig("label: y\ncolumns:\n  - {name: b, type: bucketized, quantiles: 4}\n"))) {
      XCTAssertTrue("\($0)".contains("ctrkit analyze"), "\($0)")
    }
    XCTAssertThrowsError(try Transformer(config: loadConfig("label: y\ncolumns:\n  - {name: v, type: vocabulary, vocabulary_file: nowhere.txt}\n"))) {
      XCTAssertTrue("\($0)".contains("nowhere.txt"), "\($0)")
    }
    var c = ColumnConfig(name: "v", type: .vocabulary)
    c.vocabularyFile = FeatureFixtures.path("vocab.txt")
    c.numOOVBuckets = 5
    let (_, batch) = try transformExamples(FeatureConfig(label: FeatureRef(name: "y"), columns: [c]),
                                           [Example(["y": .int64List([0]), "v": .bytesList([Array("date".utf8)])])])
    XCTAssertEqual(ids(batch, "v", 0), [4], "line number in the file (golden file_oov5)")
  }
}
