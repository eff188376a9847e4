import Foundation
import XCTest
@testable import Features
import Records

final class ConvertSynthTests: XCTestCase {
  func testSameSeedGivesTheSameFileWhateverTheThreadCount() throws {
    let dir = ScratchDirectory()
    let a = dir.file("a.tsv"), b = dir.file("b.tsv"), c = dir.file("c.tsv")
    _ = try CriteoSynth(seed: 42).generate(rows: 20_000, output: a, threads: 1)
    _ = try CriteoSynth(seed: 42).generate(rows: 20_000, output: b, threads: 3)
    _ = try CriteoSynth(seed: 43).generate(rows: 20_000, output: c, threads: 2)
    XCTAssertEqual(ConvertTest.bytes(a), ConvertTest.bytes(b))
    XCTAssertNotEqual(ConvertTest.bytes(a), ConvertTest.bytes(c))
    XCTAssertEqual(try ConvertTest.lines(a).count, 20_000)
  }

  /// Held-out rows: another row seed draws new rows from the same model (the same categorical
  /// values, so a model trained on one set applies to the other); another model seed does not.
  func testARowSeedDrawsNewRowsOfTheSameModel() throws {
    let dir = ScratchDirectory()
    let a = dir.file("a.tsv"), held = dir.file("held.tsv"), other = dir.file("other.tsv")
    _ = try CriteoSynth(seed: 42).generate(rows: 5_000, output: a, threads: 2)
    _ = try CriteoSynth(seed: 42, rowSeed: 43).generate(rows: 5_000, output: held, threads: 2)
    _ = try CriteoSynth(seed: 43).generate(rows: 5_000, output: other, threads: 2)
    XCTAssertNotEqual(ConvertTest.bytes(a), ConvertTest.bytes(held))
    func c1(_ path: String) throws -> Set<Substring> {
      Set(try ConvertTest.lines(path).map { $0.split(separator: "\t", omittingEmptySubsequences: false)[14] })
    }
    let seen = try c1(a)
    let sameModel = try c1(held), otherModel = try c1(other)
    XCTAssertGreaterThan(Double(sameModel.intersection(seen).count) / Double(sameModel.count), 0.5)
    XCTAssertLessThan(Double(otherModel.intersection(seen).count) / Double(otherModel.count), 0.05)
    XCTAssertEqual(CriteoSynth(seed: 42, rowSeed: 43).bias, CriteoSynth(seed: 42).bias, "the same model")
  }

  func testRowsHaveTheCriteoLayoutAClickRateNearTwentyTwoPercentAndMissingValues() throws {
    let dir = ScratchDirectory()
    let path = dir.file("s.tsv"), probs = dir.file("p.txt")
    let summary = try CriteoSynth(seed: 7).generate(rows: 20_000, output: path, probabilities: probs, threads: 2)
    let lines = try ConvertTest.lines(path)
    var clicks = 0
    var missing = Array(repeating: 0, count: 40)
    var distinct = Array(repeating: Set<Substring>(), count: 40)
    for line in lines {
      let f = line.split(separator: "\t", omittingEmptySubsequences: false)
      XCTAssertEqual(f.count, 40)
      if f[0] == "1" { clicks += 1 } else { XCTAssertEqual(f[0], "0") }
      for i in 1..<40 {
        if f[i].isEmpty { missing[i] += 1; continue }
        if i <= 13 { XCTAssertNotNil(Int64(f[i]), "I\(i) is an integer") } else {
          XCTAssertEqual(f[i].count, 8, "C\(i - 13) is 8 hex digits")
          if distinct[i].count < 5000 { distinct[i].insert(f[i]) }
        }
      }
    }
    XCTAssertEqual(summary.clicks, clicks)
    let rate = Double(clicks) / Double(lines.count)
    XCTAssertEqual(rate, 0.22, accuracy: 0.03)
    XCTAssertEqual(summary.meanProbability, 0.22, accuracy: 0.02)
    XCTAssertGreaterThan(Double(missing[12]) / Double(lines.count), 0.6, "I12 is mostly missing, as in Criteo")
    XCTAssertEqual(missing[14], 0, "C1 is never missing")
    XCTAssertLessThanOrEqual(distinct[22].count, 3, "C9 has three values")
    XCTAssertGreaterThan(distinct[16].count, 1000, "C3 has a long tail")
    let p = try ConvertTest.lines(probs).map { Double($0)! }
    XCTAssertEqual(p.count, lines.count)
    XCTAssertTrue(p.allSatisfy { $0 >= 0 && $0 <= 1 })
    // The probabilities are informative: clicked rows have a clearly higher mean.
    let labels = lines.map { $0.hasPrefix("1") }
    let meanClicked = zip(p, labels).filter { $0.1 }.map(\.0).reduce(0, +) / Double(clicks)
    let meanOther = zip(p, labels).filter { !$0.1 }.map(\.0).reduce(0, +) / Double(lines.count - clicks)
    XCTAssertGreaterThan(meanClicked - meanOther, 0.1)
  }

  /// Variance of the interaction residual of two fields: mean logit of the true probability per
  /// (a, b) cell, minus its row and column means (what an additive model such as LR can fit).
  func interactionVariance(_ rows: [[Substring]], _ logits: [Double], _ a: Int, _ b: Int) -> Double {
    var cells: [Substring: [Substring: (Double, Int)]] = [:]
    for (r, l) in zip(rows, logits) where !r[a].isEmpty && !r[b].isEmpty {
      let old = cells[r[a], default: [:]][r[b], default: (0, 0)]
      cells[r[a], default: [:]][r[b]] = (old.0 + l, old.1 + 1)
    }
    // Keep well-populated cells of the most frequent values only.
    var mean: [Substring: [Substring: Double]] = [:]
    for (x, row) in cells { for (y, v) in row where v.1 >= 30 { mean[x, default: [:]][y] = v.0 / Double(v.1) } }
    let ys = Set(mean.values.flatMap(\.keys))
    let fullRows = mean.filter { $0.value.count == ys.count }
    guard fullRows.count >= 2, ys.count >= 2 else { return 0 }
    let grand = fullRows.values.flatMap(\.values).reduce(0, +) / Double(fullRows.count * ys.count)
    var rowMean: [Substring: Double] = [:], colMean: [Substring: Double] = [:]
    for (x, row) in fullRows { rowMean[x] = row.values.reduce(0, +) / Double(ys.count) }
    for y in ys { colMean[y] = fullRows.values.map { $0[y]! }.reduce(0, +) / Double(fullRows.count) }
    var sum = 0.0, n = 0
    for (x, row) in fullRows {
      for (y, v) in row {
        let r = v - rowMean[x]! - colMean[y]! + grand
        sum += r * r
        n += 1
      }
    }
    return sum / Double(n)
  }

  func testInteractingFieldPairsHaveNonAdditiveEffectsThatOtherPairsLack() throws {
    // C6 x C9 is one of the model's latent pairs; C6 x C17 is not. An additive model (LR) fits
    // only row + column effects; the interacting pair leaves much larger residuals (FM's job).
    let dir = ScratchDirectory()
    let path = dir.file("s.tsv"), probs = dir.file("p.txt")
    _ = try CriteoSynth(seed: 5).generate(rows: 24_000, output: path, probabilities: probs, threads: 2)
    let rows = try ConvertTest.lines(path).map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
    let logits = try ConvertTest.lines(probs).map { p -> Double in
      let q = min(max(Double(p)!, 1e-6), 1 - 1e-6)
      return log(q / (1 - q))
    }
    let interacting = interactionVariance(rows, logits, 19, 22)
    let independent = interactionVariance(rows, logits, 19, 30)
    XCTAssertGreaterThan(interacting, 0.05)
    XCTAssertGreaterThan(interacting, 4 * independent, "interacting \(interacting) vs independent \(independent)")
  }
}
