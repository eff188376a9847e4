import Foundation
import XCTest
import Features
import Records
@testable import CTR

/// Finite-difference checks of the model's own training path: the gradients
/// `ComputeWorker.computeGradients` leaves for every coordinate of every unique linear row, factor
/// row and of the dense block, against central differences of the summed weighted loss
/// L = Σ_b w_b·(softplus(z_b) − y_b·z_b) computed from `ComputeWorker.predict`.
///
/// Scale convention: a sparse row's gradient is dL/dθ (the summed per-example gradient); the
/// dense block's is dL/dθ / Σ_b w_b (the batch mean).
///
/// Step and tolerance: h = 1e-3·max(1, |θ|), and the difference quotient divides by the step
/// actually stored (θ ± h rounded to Float32). Every logit is linear in any single coordinate
/// (FM's pairwise term is linear in each field vector), or quadratic when two fields share a
/// table, and a central difference of a quadratic is exact; what truncation error remains comes
/// from the loss's own curvature:
/// h²/6·|ℓ'''|·|dz/dθ|³ ≤ 1e-6/6·0.1·(a few)³ < 1e-6. What remains is Float32 rounding of the
/// logits: each is a sum of ≤ ~40 terms of magnitude ≤ ~2, so its error is ≲ 40·2·6e-8 ≈ 5e-6 in
/// the worst case (≈ 5e-7 typically); over 8 weighted examples (Σw = 10.25, |σ − y| < 1) that
/// is ≲ 5e-5 of loss, divided by 2h = 2e-3: ≲ 2.5e-2 worst case, ~3e-3 typically. We allow
/// 3e-3 + 1e-2·|fd| (the largest absolute error observed is 7e-4, on a gradient of 12), which
/// still fails for any mis-scaling (e.g. a missing 1/bag-size, a dropped example weight or the
/// dense mean applied to sparse rows: all ≥ 25% errors on gradients of magnitude ≥ 0.05).
final class ModelGradientTests: XCTestCase {
  static let features = """
    features:
      label: label
      weight: w
      columns:
        - {name: c1, type: hash_bucket, hash_bucket_size: 1000}
        - {name: tags, type: hash_bucket, hash_bucket_size: 1000, embedding: {dimension: 3, combiner: mean}}
        - {name: wcat, type: hash_bucket, hash_bucket_size: 1000, weight_feature: wcat_w, embedding: {dimension: 3, combiner: sqrtn}}
        - {name: hist, type: sequence, id_type: hash_bucket, hash_bucket_size: 1000, max_length: 4, embedding: {dimension: 3, combiner: sum}}
        - {name: n1, type: numeric}
        - {name: n2, type: numeric, shape: 2}
    """

  /// Eight examples: repeated ids across examples and inside one bag, an empty bag, a negative
  /// weight in the sqrtn column (TensorFlow prunes weights ≤ 0 for mean/sqrtn, not for the
  /// linear sum), a sequence longer than max_length, and example weights from 0.25 to 3.
  static var examples: [Example] {
    struct Row {
      var label: Int64, w: Float, c1: String, tags: [String], wcat: [(String, Float)], hist: [String], n1: Float, n2: (Float, Float)
    }
    let rows: [Row] = [
      Row(label: 1, w: 1.0, c1: "a", tags: ["t1", "t2"], wcat: [("x", 0.5), ("y", 2.0)], hist: ["h1", "h2", "h3"], n1: 0.3, n2: (-1.2, 0.7)),
      Row(label: 0, w: 2.0, c1: "b", tags: ["t1"], wcat: [("x", 1.5)], hist: ["h2"], n1: -0.5, n2: (0.4, 1.1)),
      Row(label: 1, w: 0.5, c1: "a", tags: ["t2", "t2", "t3"], wcat: [("z", 1.0), ("x", 0.25)], hist: ["h1", "h4", "h2", "h5", "h6"],
          n1: 1.2, n2: (0.1, -0.3)),
      Row(label: 0, w: 1.5, c1: "c", tags: [], wcat: [("y", -0.5), ("z", 2.0)], hist: ["h3"], n1: 0.0, n2: (-0.8, 0.2)),
      Row(label: 1, w: 1.0, c1: "b", tags: ["t3", "t4"], wcat: [], hist: [], n1: 0.9, n2: (1.3, -1.0)),
      Row(label: 0, w: 3.0, c1: "d", tags: ["t1", "t4", "t5"], wcat: [("x", 1.0)], hist: ["h1", "h1"], n1: -1.1, n2: (0.0, 0.5)),
      Row(label: 1, w: 0.25, c1: "a", tags: ["t5"], wcat: [("y", 0.75), ("z", 0.5)], hist: ["h6", "h2"], n1: 0.6, n2: (-0.2, 0.9)),
      Row(label: 0, w: 1.0, c1: "c", tags: ["t2"], wcat: [("x", 2.0)], hist: ["h4"], n1: -0.2, n2: (0.8, -0.6)),
    ]
    return rows.map { r in
      var f: [String: Feature] = [
        "label": .int64List([r.label]), "w": .floatList([r.w]), "c1": bytesFeature(r.c1),
        "n1": .floatList([r.n1]), "n2": .floatList([r.n2.0, r.n2.1]),
      ]
      if !r.tags.isEmpty { f["tags"] = bytesFeature(r.tags) }
      if !r.wcat.isEmpty {
        f["wcat"] = bytesFeature(r.wcat.map(\.0))
        f["wcat_w"] = .floatList(r.wcat.map(\.1))
      }
      if !r.hist.isEmpty { f["hist"] = bytesFeature(r.hist) }
      return Example(f)
    }
  }

  /// Float64 summed weighted loss of the batch through the model's forward pass.
  func summedLoss(_ worker: ComputeWorker, _ b: ResolvedBatch) -> Double {
    let n = b.features.count
    var logits = [Float](repeating: 0, count: n)
    logits.withUnsafeMutableBufferPointer { worker.predict(b, into: $0.baseAddress!) }
    var total = 0.0
    for r in 0..<n {
      let z = Double(logits[r]), y = Double(b.features.labels[r]), w = Double(b.features.weights[r])
      total += w * (max(z, 0) + log1p(exp(-abs(z))) - y * z)
    }
    return total
  }

  /// Central difference of the summed loss in the coordinate at `p`, restored afterwards.
  func centralDifference(_ p: UnsafeMutablePointer<Float>, _ loss: () -> Double) -> Double {
    let original = p.pointee
    let h = 1e-3 * max(1, Double(abs(original)))
    p.pointee = Float(Double(original) + h)
    let plus = p.pointee
    let lossPlus = loss()
    p.pointee = Float(Double(original) - h)
    let minus = p.pointee
    let lossMinus = loss()
    p.pointee = original
    return (lossPlus - lossMinus) / (Double(plus) - Double(minus))
  }

  struct Checked {
    var sparseCoordinates = 0
    var denseCoordinates = 0
    var largestFactorGradient = 0.0
    var largestLinearGradient = 0.0
    var largestDenseGradient = 0.0
  }

  /// Builds the model of `modelYAML`, fills every touched row and the dense block with N(0, 0.3²)
  /// values, runs `computeGradients` and compares every coordinate with a central difference.
  @discardableResult
  func checkGradients(_ modelYAML: String, features: String = ModelGradientTests.features, examples: [Example] = ModelGradientTests.examples,
                      file: StaticString = #filePath, line: UInt = #line) throws -> (CTRModel, ResolvedBatch, Checked) {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(features + "\n" + modelYAML)
    let transformer = try Transformer(config: experiment.features, baseDirectory: experiment.baseDirectory)
    let model = try CTRModel(experiment: experiment, layout: transformer.layout)
    let b = try resolvedBatch(model, transformer, examples)
    XCTAssertEqual(b.features.count, 8, file: file, line: line)

    var rng = SplitMix64(seed: 20_240_611)
    func normal(_ std: Double) -> Float {
      let u1 = Double(rng.next() >> 11) * 0x1p-53 + 0x1p-60, u2 = Double(rng.next() >> 11) * 0x1p-53
      return Float(std * (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    for t in model.tables.indices {
      let dim = model.tables[t].dimension
      let rows = b.unique[t]
      // Deduplicated: each row of a table appears once among the batch's unique slabs.
      XCTAssertEqual(Set((0..<rows.count).map { rows.base[$0] }).count, rows.count, "\(model.tables[t].name): unique rows", file: file, line: line)
      for u in 0..<rows.count { for j in 0..<dim { rows.base[u][j] = normal(0.3) } }
    }
    for i in 0..<model.dense.count { model.dense.values.data[i] = normal(0.3) }

    let worker = ComputeWorker(model: model)
    let (loss, weight) = try worker.computeGradients(b)
    let weightSum = b.features.weights.reduce(0.0) { $0 + Double($1) }
    XCTAssertEqual(weight, weightSum, file: file, line: line)
    XCTAssertEqual(weightSum, 10.25, "the config's weight feature gives the example weights", file: file, line: line)
    let referenceLoss = summedLoss(worker, b)
    XCTAssertEqual(loss, referenceLoss, accuracy: 1e-5 * referenceLoss, "computeGradients' loss is the summed weighted loss", file: file, line: line)

    var checked = Checked()
    func compare(_ analytic: Double, _ numeric: Double, _ what: String) {
      let err = abs(analytic - numeric)
      if !(err <= 3e-3 + 1e-2 * abs(numeric)) {
        XCTFail("\(what): computeGradients gave \(analytic), the central difference \(numeric)", file: file, line: line)
      }
    }
    for t in model.tables.indices {
      let table = model.tables[t]
      let isFactor = table.name.hasSuffix("/factors")
      for u in 0..<b.unique[t].count {
        let g = worker.gradient(table: t, unique: u)
        let slab = b.unique[t].base[u]
        for j in 0..<table.dimension {
          let numeric = centralDifference(slab + j) { summedLoss(worker, b) }
          compare(Double(g[j]), numeric, "\(table.name) unique row \(u) coordinate \(j)")
          checked.sparseCoordinates += 1
          if isFactor {
            checked.largestFactorGradient = max(checked.largestFactorGradient, abs(Double(g[j])))
          } else {
            checked.largestLinearGradient = max(checked.largestLinearGradient, abs(Double(g[j])))
          }
        }
      }
    }
    let dg = worker.denseGradient
    XCTAssertEqual(dg.count, model.dense.count, file: file, line: line)
    for i in 0..<model.dense.count {
      let numeric = centralDifference(model.dense.values.data + i) { summedLoss(worker, b) } / weightSum
      compare(Double(dg[i]), numeric, "dense[\(i)] (batch mean)")
      checked.denseCoordinates += 1
      checked.largestDenseGradient = max(checked.largestDenseGradient, abs(Double(dg[i])))
    }
    // The comparisons were not vacuous: gradients of every kind are far above the tolerance.
    XCTAssertGreaterThan(checked.largestLinearGradient, 0.5, file: file, line: line)
    XCTAssertGreaterThan(checked.largestDenseGradient, 0.05, file: file, line: line)
    return (model, b, checked)
  }

  func tableIndex(_ model: CTRModel, _ name: String) -> Int { model.tables.firstIndex { $0.name == name }! }

  func testLogisticRegressionGradientsMatchCentralDifferences() throws {
    let (model, b, checked) = try checkGradients("model: {type: lr}")
    XCTAssertEqual(model.tables.map(\.name), ["c1/linear", "tags/linear", "wcat/linear", "hist/linear"])
    // Distinct ids per table: c1 {a b c d}, tags {t1..t5}, wcat {x y z}, hist {h1..h6}.
    XCTAssertEqual(model.tables.indices.map { b.unique[$0].count }, [4, 5, 3, 6])
    // Dense block: w_dense (n1, n2[0], n2[1]) | bias.
    XCTAssertEqual(model.dense.count, 4)
    XCTAssertEqual(checked.sparseCoordinates, 18)
  }

  func testFMGradientsWithDenseFieldsMatchCentralDifferences() throws {
    let (model, b, checked) = try checkGradients("model: {type: fm, factors: 3, dense_fields: true, seed: 3}")
    XCTAssertEqual(model.tables.map(\.name), ["c1/linear", "c1/factors", "tags/linear", "tags/factors", "wcat/linear", "wcat/factors",
                                              "hist/linear", "hist/factors"])
    XCTAssertEqual(b.unique[tableIndex(model, "tags/factors")].count, 5)
    // Dense block: w_dense (3) | bias | v_dense (3 inputs × k = 3).
    XCTAssertEqual(model.dense.count, 3 + 1 + 9)
    XCTAssertEqual(checked.sparseCoordinates, 18 + 3 * 18)
    XCTAssertEqual(checked.denseCoordinates, 13)
    XCTAssertGreaterThan(checked.largestFactorGradient, 0.3, "the FM terms matter with N(0, 0.3²) factors")
  }

  /// The factor kernels are specialized per SIMD width (16, 8, 4, 2 lanes, with a scalar tail for
  /// odd k); k = 3 above runs the 2-lane path with its tail, these run the others.
  func testFMGradientsMatchCentralDifferencesForEverySIMDWidth() throws {
    for k in [4, 8, 16, 5] {
      let (_, _, checked) = try checkGradients("model: {type: fm, factors: \(k), dense_fields: true, seed: 3}")
      XCTAssertGreaterThan(checked.largestFactorGradient, 0.1, "k = \(k)")
    }
  }

  func testFMGradientsWithoutDenseFieldsAndLinearOnlyColumnsMatchCentralDifferences() throws {
    let (model, _, checked) = try checkGradients("model: {type: fm, factors: 3, dense_fields: false, fm_columns: [tags, wcat, hist]}")
    // c1 stays linear-only: no factor table.
    XCTAssertEqual(model.tables.map(\.name), ["c1/linear", "tags/linear", "tags/factors", "wcat/linear", "wcat/factors",
                                              "hist/linear", "hist/factors"])
    XCTAssertEqual(model.dense.count, 3 + 1)
    XCTAssertEqual(checked.sparseCoordinates, 18 + 3 * (5 + 3 + 6))
    XCTAssertGreaterThan(checked.largestFactorGradient, 0.3)
  }

  /// Two fields sharing one factor table (`embedding.shared`): an id in both fields of one example
  /// has one row that gets both fields' gradients, and the logit is quadratic in it.
  func testFMGradientsWithASharedFactorTableMatchCentralDifferences() throws {
    let shared = Self.features
      .replacingOccurrences(of: "{name: c1, type: hash_bucket, hash_bucket_size: 1000}",
                            with: "{name: c1, type: hash_bucket, hash_bucket_size: 1000, embedding: {dimension: 3, shared: common}}")
      .replacingOccurrences(of: "embedding: {dimension: 3, combiner: mean}", with: "embedding: {dimension: 3, combiner: mean, shared: common}")
    XCTAssertEqual(shared.components(separatedBy: "shared: common").count, 3)
    var examples = Self.examples
    // 'a' is also a tag of examples 0 and 6, whose c1 is 'a'.
    examples[0].features!["tags"] = bytesFeature("t1", "t2", "a")
    examples[6].features!["tags"] = bytesFeature("a")
    let (model, b, checked) = try checkGradients("model: {type: fm, factors: 3}", features: shared, examples: examples)
    XCTAssertEqual(model.tables.map(\.name), ["c1/linear", "common/factors", "tags/linear", "wcat/linear", "wcat/factors",
                                              "hist/linear", "hist/factors"])
    // The shared table's unique rows: c1 {a b c d} ∪ tags {t1..t5, a}.
    XCTAssertEqual(b.unique[tableIndex(model, "common/factors")].count, 9)
    XCTAssertEqual(checked.sparseCoordinates, 4 + 6 + 3 + 6 + 3 * (9 + 3 + 6))
    XCTAssertGreaterThan(checked.largestFactorGradient, 0.3)
  }

  /// The pooled FM field vector is Σ w·v / norm with TensorFlow's norms (sum 1, mean Σw, sqrtn
  /// √Σw²) and weights ≤ 0 pruned for mean and sqrtn: pinned on one example whose logit is
  /// computed here by hand from the rows the model holds.
  func testFMLogitPoolsFieldsWithTheColumnsCombiners() throws {
    let scratch = ScratchDirectory()
    let experiment = try scratch.experiment(Self.features + "\nmodel: {type: fm, factors: 2, dense_fields: true}")
    let transformer = try Transformer(config: experiment.features, baseDirectory: experiment.baseDirectory)
    let model = try CTRModel(experiment: experiment, layout: transformer.layout)
    // Example 3: c1 'c'; no tags; wcat y (−0.5, pruned in sqrtn), z (2.0); hist h3; n1 0, n2 (−0.8, 0.2).
    // Example 2: tags t2, t2, t3 (mean over 3); wcat z (1), x (0.25); hist h4 h2 h5 h6 (truncated).
    let b = try resolvedBatch(model, transformer, [Self.examples[3], Self.examples[2]])
    var rng = SplitMix64(seed: 9)
    for t in model.tables.indices {
      for u in 0..<b.unique[t].count { for j in 0..<model.tables[t].dimension { b.unique[t].base[u][j] = rng.float(-1, 1) } }
    }
    for i in 0..<model.dense.count { model.dense.values.data[i] = rng.float(-1, 1) }
    func row(_ table: String, _ id: String) -> [Double] {
      let t = model.tables.first { $0.name == table }!.table
      let hashed = TFHash.hashBucketFast(id, buckets: t.directLimit)
      return (0..<t.dimension).map { Double(t.find(hashed)![$0]) }
    }
    let dv = (0..<model.dense.count).map { Double(model.dense.values.data[$0]) }
    func logit(c1: String, tags: [String], wcat: [(String, Double)], hist: [String], dense x: [Double]) -> Double {
      var z = dv[3]
      for j in 0..<3 { z += dv[j] * x[j] }
      z += row("c1/linear", c1)[0]
      for t in tags { z += row("tags/linear", t)[0] }
      for (id, w) in wcat { z += w * row("wcat/linear", id)[0] }
      for h in hist { z += row("hist/linear", h)[0] }
      var fieldVectors: [[Double]] = [row("c1/factors", c1)]
      var tagsVector = [0.0, 0.0]
      for t in tags { for j in 0..<2 { tagsVector[j] += row("tags/factors", t)[j] / Double(max(tags.count, 1)) } }
      fieldVectors.append(tagsVector)
      let kept = wcat.filter { $0.1 > 0 }
      let sqrtn = kept.map { $0.1 * $0.1 }.reduce(0, +).squareRoot()
      var wcatVector = [0.0, 0.0]
      for (id, w) in kept { for j in 0..<2 { wcatVector[j] += w * row("wcat/factors", id)[j] / sqrtn } }
      fieldVectors.append(wcatVector)
      var histVector = [0.0, 0.0]
      for h in hist { for j in 0..<2 { histVector[j] += row("hist/factors", h)[j] } }
      fieldVectors.append(histVector)
      for d in 0..<3 { fieldVectors.append((0..<2).map { x[d] * dv[4 + d * 2 + $0] }) }
      for f in 0..<fieldVectors.count {
        for g in (f + 1)..<fieldVectors.count { for j in 0..<2 { z += fieldVectors[f][j] * fieldVectors[g][j] } }
      }
      return z
    }
    var logits = [Float](repeating: 0, count: 2)
    logits.withUnsafeMutableBufferPointer { ComputeWorker(model: model).predict(b, into: $0.baseAddress!) }
    let expected3 = logit(c1: "c", tags: [], wcat: [("y", -0.5), ("z", 2.0)], hist: ["h3"], dense: [0, -0.8, 0.2])
    let expected2 = logit(c1: "a", tags: ["t2", "t2", "t3"], wcat: [("z", 1.0), ("x", 0.25)], hist: ["h4", "h2", "h5", "h6"],
                          dense: [1.2, 0.1, -0.3])
    XCTAssertEqual(Double(logits[0]), expected3, accuracy: 1e-5)
    XCTAssertEqual(Double(logits[1]), expected2, accuracy: 1e-5)
  }
}
