import Foundation
import XCTest
@testable import Features
import Records

final class AnalyzerTests: XCTestCase {
  func exactRank(_ sorted: [Double], _ v: Double) -> Double {
    var lo = 0, hi = sorted.count
    while lo < hi { let m = (lo + hi) / 2; if sorted[m] <= v { lo = m + 1 } else { hi = m } }
    return Double(lo) / Double(sorted.count)
  }

  func testQuantileSketchRankErrorStaysWithinItsStatedBound() {
    var rng = SplitMix64(seed: 1)
    let generators: [(String, () -> Double)] = [
      ("uniform", { Double.random(in: 0..<1, using: &rng) }),
      ("lognormal", { exp(2 * (Double.random(in: 0..<1, using: &rng) + Double.random(in: 0..<1, using: &rng) - 1)) }),
      ("ties", { Double(Int.random(in: 0..<20, using: &rng)) }),
    ]
    for (name, gen) in generators {
      var sketch = QuantileSketch(k: 200)
      var all: [Double] = []
      for _ in 0..<60_000 { let v = gen(); all.append(v); sketch.insert(v) }
      all.sort()
      let bound = QuantileSketch.errorBound(k: 200)
      var worst = 0.0
      for q in stride(from: 0.01, to: 1.0, by: 0.01) {
        let v = sketch.quantile(q)!
        // For ties, any q between the ranks just below and at v is exact.
        let below = exactRank(all, v.nextDown), at = exactRank(all, v)
        let err = q < below ? below - q : (q > at ? q - at : 0)
        worst = max(worst, err)
      }
      XCTAssertLessThanOrEqual(worst, bound, "\(name): worst rank error \(worst) vs bound \(bound)")
      XCTAssertLessThan(sketch.retained, 3 * 200, "\(name): memory stays O(k)")
    }
  }

  func testMergedSketchesKeepTheBound() {
    var rng = SplitMix64(seed: 2)
    var parts = (0..<4).map { _ in QuantileSketch(k: 200) }
    var all: [Double] = []
    for i in 0..<40_000 {
      let v = Double.random(in: -100..<100, using: &rng) * Double(i % 7 + 1)
      all.append(v)
      parts[i % 4].insert(v)
    }
    var merged = parts[0]
    for p in parts.dropFirst() { merged.merge(p) }
    all.sort()
    XCTAssertEqual(merged.count, 40_000)
    for q in [0.1, 0.25, 0.5, 0.75, 0.9] {
      XCTAssertLessThanOrEqual(abs(exactRank(all, merged.quantile(q)!) - q), QuantileSketch.errorBound(k: 200) + 1.0 / 40_000)
    }
  }

  func testBoundariesOfTiedDataMergeBucketsInsteadOfLeavingThemEmpty() {
    var sketch = QuantileSketch()
    for i in 0..<1000 { sketch.insert(Double(i % 3)) }
    let b = sketch.boundaries(buckets: 10)
    XCTAssertEqual(b, [1, 2])
  }

  func testVocabularyCountsAreExactOnSmallData() {
    var rng = SplitMix64(seed: 3)
    let counter = FrequencyCounter()
    var truth: [String: Int64] = [:]
    for _ in 0..<20_000 {
      let w = "w\(Int(pow(Double.random(in: 1..<1000, using: &rng), 1.5)))"
      truth[w, default: 0] += 1
      Array(w.utf8).withUnsafeBytes { counter.add($0) }
    }
    XCTAssertTrue(counter.isExact)
    let top = counter.top(nil)
    XCTAssertEqual(top.count, truth.count)
    for (bytes, count) in top { XCTAssertEqual(truth[String(decoding: bytes, as: UTF8.self)], count) }
    XCTAssertEqual(top.map(\.count), top.map(\.count).sorted(by: >), "most frequent first")
  }

  func testPastItsCapacityTheCounterKeepsHeavyHittersWithinItsBound() {
    var rng = SplitMix64(seed: 4)
    let counter = FrequencyCounter(maxTracked: 64)
    var truth: [Int64: Int64] = [:]
    for _ in 0..<50_000 {
      // 5 heavy values (~10% each) in a sea of rare ones.
      let v: Int64 = Double.random(in: 0..<1, using: &rng) < 0.5 ? Int64.random(in: 0..<5, using: &rng) : Int64.random(in: 100..<100_000, using: &rng)
      truth[v, default: 0] += 1
      counter.add(int64: v)
    }
    XCTAssertFalse(counter.isExact)
    let top = Dictionary(uniqueKeysWithValues: counter.top(5).map { (Int64(String(decoding: $0.value, as: UTF8.self))!, $0.count) })
    XCTAssertEqual(Set(top.keys), Set(0..<5))
    for (v, c) in top {
      XCTAssertLessThanOrEqual(c, truth[v]!)
      XCTAssertGreaterThanOrEqual(c, truth[v]! - counter.maxUndercount)
    }
  }

  func testNumericAccumulatorMergesToTheSinglePassResult() {
    var a = NumericAccumulator(), b = NumericAccumulator(), all = NumericAccumulator()
    for i in 0..<1000 {
      let v = Double(i * i % 97) - 13.5
      all.add(v)
      if i % 3 == 0 { a.add(v) } else { b.add(v) }
    }
    a.merge(b)
    XCTAssertEqual(a.statistics.count, all.statistics.count)
    XCTAssertEqual(a.statistics.mean, all.statistics.mean, accuracy: 1e-12)
    XCTAssertEqual(a.statistics.std, all.statistics.std, accuracy: 1e-12)
    XCTAssertEqual(a.statistics.min, -13.5)
  }

  func testAnalyzeFitsExactlyAndTheSameWithAnyThreadCount() throws {
    let dir = ScratchDirectory()
    var rng = SplitMix64(seed: 5)
    var examples: [Example] = []
    var countryCounts: [String: Int] = [:]
    var prices: [Double] = []
    for i in 0..<5000 {
      let country = ["US", "CA", "MX", "FR", "DE", "JP"][Int(pow(Double.random(in: 0..<1, using: &rng), 2) * 6)]
      countryCounts[country, default: 0] += 1
      var m: [String: Feature] = ["y": .int64List([Int64(i % 2)]), "country": .bytesList([Array(country.utf8)])]
      if i % 10 != 0 {
        let p = Double(Float(Double.random(in: 1..<1000, using: &rng)))
        prices.append(p)
        m["price"] = .floatList([Float(p)])
      }
      examples.append(Example(m))
    }
    let shards = try (0..<3).map { s in try dir.tfrecord("part-\(s).tfrecord.gz", Array(examples[(s * 1700)..<min(5000, (s + 1) * 1700)]), compression: .gzip) }
    let config = try loadConfig("""
      label: y
      columns:
        - {name: price, type: numeric, normalizer: zscore}
        - {name: price_q, type: bucketized, source: price, quantiles: 4}
        - {name: country, type: vocabulary, top_k: 4, min_count: 2, num_oov_buckets: 1}
      """)
    var results: [FeatureConfig] = []
    for threads in [1, 2, 3] {
      var options = AnalyzerOptions()
      options.threads = threads
      options.batchSize = 256
      let (fitted, report) = try Analyzer.fit(config: config, paths: shards, options: options)
      XCTAssertEqual(report.records, 5000)
      results.append(fitted)
    }
    XCTAssertEqual(results[0], results[1])
    XCTAssertEqual(results[1], results[2])
    let fitted = results[0]
    XCTAssertEqual(fitted.fitted, true)
    let expectedTop = countryCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(4)
    XCTAssertEqual(fitted.columns[2].vocabulary!, expectedTop.map(\.key))
    XCTAssertEqual(fitted.columns[2].frequencies!, expectedTop.map(\.value))
    let stats = fitted.columns[0].statistics!
    XCTAssertEqual(stats.count, prices.count)
    XCTAssertEqual(stats.missing, 500)
    XCTAssertEqual(stats.mean, prices.reduce(0, +) / Double(prices.count), accuracy: 1e-9)
    let b = fitted.columns[1].boundaries!
    XCTAssertEqual(b.count, 3)
    let sorted = prices.sorted()
    for (i, boundary) in b.enumerated() {
      XCTAssertEqual(exactRank(sorted, Double(boundary)), Double(i + 1) / 4, accuracy: 0.01)
    }
    // The fitted config drives a transformer with no further input.
    let (_, batch) = try transformExamples(fitted, Array(examples[0..<20]))
    XCTAssertEqual(batch.count, 20)
  }
}
