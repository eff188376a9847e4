import Features
import Foundation
import Records

/// A training step failed: a non-finite loss (divergence), with where the batch came from.
public struct TrainingError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public var description: String { message }
}

/// One field of a resolved batch, in raw pointers: the per-example loops read these instead of
/// Swift arrays, so they make no bounds checks or reference counting.
private struct FieldView {
  var starts: UnsafePointer<Int32>
  var linearPositions: UnsafePointer<Int32>
  var linearRows: UnsafePointer<UnsafeMutablePointer<Float>>
  var linearGradient: UnsafeMutablePointer<Float>
  var factorPositions: UnsafePointer<Int32>?
  var factorRows: UnsafePointer<UnsafeMutablePointer<Float>>?
  var factorGradient: UnsafeMutablePointer<Float>?
  /// nil when every weight is 1.
  var values: UnsafePointer<Float>?
  var combiner: EmbeddingCombiner
}

/// Runs forward and backward passes for one thread. Scratch is per worker, so workers share
/// only the model's rows (updated lock-free, Hogwild-style) and the dense block (under a lock).
///
/// The factor part runs in SIMD vectors of the widest width that divides k (16, 8, 4 or 2
/// floats), chosen once per batch, so k = 16 is one register per row on AVX-512 (four on SSE).
final class ComputeWorker: @unchecked Sendable {
  let model: CTRModel
  private var grads: [GrowableBuffer<Float>]
  private let denseGrad: UnsafeMutablePointer<Float>
  /// Pooled field vectors that are not a row as is (several ids, weights, dense inputs).
  private let fieldVectors: UnsafeMutablePointer<Float>
  /// Σ_f e_f of the current example (the backward pass needs it).
  private let sum: UnsafeMutablePointer<Float>
  /// Per FM field of the current example: e_f (nil when the field has no ids) and 1/norm.
  private let fieldVector: UnsafeMutablePointer<UnsafePointer<Float>?>
  private let inverseNorms: UnsafeMutablePointer<Float>
  private let views: UnsafeMutablePointer<FieldView>
  /// Field indices of the FM fields, in order.
  private let factorFields: UnsafeMutablePointer<Int>
  private let factorFieldCount: Int
  /// Per example of the batch: the logit's bias, dense and linear terms, then d loss / d logit.
  private var logitScratch = GrowableBuffer<Float>(capacity: 1024)
  private var gradientScratch = GrowableBuffer<Float>(capacity: 1024)
  private let fieldCount: Int
  private let k: Int
  private let width: Int

  init(model: CTRModel) {
    self.model = model
    grads = model.tables.map { _ in GrowableBuffer(capacity: 1024) }
    denseGrad = .allocate(capacity: max(model.dense.count, 1))
    k = model.factors
    width = model.layout.denseWidth
    fieldCount = model.fields.count
    let fm = model.fields.indices.filter { model.fields[$0].factorTable != nil }
    factorFieldCount = fm.count
    factorFields = .allocate(capacity: max(fm.count, 1))
    for (i, f) in fm.enumerated() { factorFields[i] = f }
    let vectors = fm.count + (model.denseFields ? width : 0)
    fieldVectors = .allocate(capacity: max(vectors * k, 1))
    sum = .allocate(capacity: max(k, 1))
    fieldVector = .allocate(capacity: max(vectors, 1))
    inverseNorms = .allocate(capacity: max(vectors, 1))
    views = .allocate(capacity: max(fieldCount, 1))
  }

  deinit {
    for g in grads { g.deallocate() }
    denseGrad.deallocate()
    fieldVectors.deallocate()
    sum.deallocate()
    fieldVector.deallocate()
    inverseNorms.deallocate()
    views.deallocate()
    factorFields.deallocate()
    logitScratch.deallocate()
    gradientScratch.deallocate()
  }

  @inline(__always)
  static func softplus(_ z: Float) -> Float { max(z, 0) + log1pf(expf(-abs(z))) }

  @inline(__always)
  static func sigmoid(_ z: Float) -> Float { z >= 0 ? 1 / (1 + expf(-z)) : expf(z) / (1 + expf(z)) }

  /// Points the field views at the batch (and, when training, at zeroed gradient slots).
  private func prepare(_ b: ResolvedBatch, gradients: Bool) {
    let m = model
    if gradients {
      for t in m.tables.indices { grads[t].fill(0, count: b.unique[t].count * m.tables[t].dimension) }
      denseGrad.update(repeating: 0, count: m.dense.count)
    }
    for fi in 0..<fieldCount {
      let f = m.fields[fi]
      let hasFactor = f.factorTable != nil
      let ft = f.factorTable ?? 0
      views[fi] = FieldView(
        starts: b.rowStarts[fi].base, linearPositions: b.linearPositions[fi].base,
        linearRows: b.unique[f.linearTable].base, linearGradient: grads[f.linearTable].base,
        factorPositions: hasFactor ? UnsafePointer(b.factorPositions[fi].base) : nil,
        factorRows: hasFactor ? UnsafePointer(b.unique[ft].base) : nil,
        factorGradient: hasFactor ? grads[ft].base : nil,
        values: f.weighted ? UnsafePointer(b.values[fi].base) : nil,
        combiner: f.combiner)
    }
  }

  /// The bias, dense and linear terms of every example's logit, into z[0..<n], field by field.
  /// A field's pointers are then loaded once per batch instead of once per example, which for
  /// one id per field (most CTR fields) cost more than the id itself. Each example's terms are
  /// still added in the order bias, dense inputs, fields in order, so every sum is unchanged.
  private func linearLogits(_ b: ResolvedBatch, _ z: UnsafeMutablePointer<Float>) {
    let n = b.count
    let dv = model.dense.values.data
    let bias = dv[width]
    if width > 0 {
      for r in 0..<n {
        let x = b.dense + r * width
        var s = bias
        for j in 0..<width { s += dv[j] * x[j] }
        z[r] = s
      }
    } else {
      z.update(repeating: bias, count: n)
    }
    // `while` loops: a `lo..<hi` range checks lo <= hi and each step for overflow. One id
    // (the common case) is tested for first: the general loop's set-up costs more than the id.
    for fi in 0..<fieldCount {
      let v = views[fi]
      let starts = v.starts, positions = v.linearPositions, rows = v.linearRows
      var i = Int(starts[0]), r = 0
      if let vals = v.values {
        while r < n {
          let hi = Int(starts[r &+ 1])
          var s = z[r]
          while i < hi { s += rows[Int(positions[i])].pointee * vals[i]; i &+= 1 }
          z[r] = s
          r &+= 1
        }
      } else {
        while r < n {
          let hi = Int(starts[r &+ 1])
          if hi == i &+ 1 {
            z[r] += rows[Int(positions[i])].pointee
          } else {
            var s = z[r]
            while i < hi { s += rows[Int(positions[i])].pointee; i &+= 1 }
            z[r] = s
          }
          i = hi
          r &+= 1
        }
      }
    }
  }

  /// Adds each example's gradient g[r] (times the id's weight) to its ids' linear rows, field by
  /// field (see `linearLogits`). An example with g = 0 adds zeros, which change no sum.
  private func linearBackward(_ b: ResolvedBatch, _ g: UnsafePointer<Float>) {
    let n = b.count
    for fi in 0..<fieldCount {
      let v = views[fi]
      let starts = v.starts, positions = v.linearPositions, grad = v.linearGradient
      var i = Int(starts[0]), r = 0
      if let vals = v.values {
        while r < n {
          let hi = Int(starts[r &+ 1])
          let gr = g[r]
          while i < hi { grad[Int(positions[i])] += gr * vals[i]; i &+= 1 }
          r &+= 1
        }
      } else {
        while r < n {
          let hi = Int(starts[r &+ 1])
          let gr = g[r]
          if hi == i &+ 1 {
            grad[Int(positions[i])] += gr
          } else {
            while i < hi { grad[Int(positions[i])] += gr; i &+= 1 }
          }
          i = hi
          r &+= 1
        }
      }
    }
  }

  /// ½ Σ_j ((Σ_f e_f)_j² − Σ_f (e_f)_j²), the O(k·n) form of FM's pairwise term.
  @inline(__always)
  private func factorTerm<V: SIMDLanes>(_ b: ResolvedBatch, _ r: Int, _: V.Type) -> Float {
    // Pass 1: each field's pooled vector; a single id with weight 1 (or any positive weight
    // under mean/sqrtn, where the norm cancels it) is used in place.
    for f in 0..<factorFieldCount {
      let v = views[factorFields[f]]
      let lo = Int(v.starts[r]), hi = Int(v.starts[r + 1])
      if lo == hi { fieldVector[f] = nil; continue }
      let rows = v.factorRows.unsafelyUnwrapped, pos = v.factorPositions.unsafelyUnwrapped
      let w0 = v.values?[lo] ?? 1
      if hi == lo + 1 && (w0 == 1 || (v.combiner != .sum && w0 > 0)) {
        fieldVector[f] = UnsafePointer(rows[Int(pos[lo])])
        inverseNorms[f] = 1 / w0
        continue
      }
      let e = fieldVectors + f * k
      e.update(repeating: 0, count: k)
      var weightSum: Float = 0, squareSum: Float = 0
      for i in lo..<hi {
        let w = v.values?[i] ?? 1
        if v.combiner != .sum && w <= 0 { continue }  // TF prunes weights <= 0 for mean/sqrtn
        let row = rows[Int(pos[i])]
        for j in 0..<k { e[j] += w * row[j] }
        weightSum += w
        squareSum += w * w
      }
      var norm: Float = 1
      switch v.combiner {
      case .sum: norm = 1
      case .mean: norm = weightSum > 0 ? weightSum : 1
      case .sqrtn: norm = squareSum > 0 ? squareSum.squareRoot() : 1
      }
      if norm != 1 { let s = 1 / norm; for j in 0..<k { e[j] *= s } }
      inverseNorms[f] = 1 / norm
      fieldVector[f] = UnsafePointer(e)
    }
    var vectors = factorFieldCount
    if model.denseFields && width > 0 {
      let x = b.dense + r * width
      let vd = model.dense.values.data + width + 1
      for d in 0..<width {
        let e = fieldVectors + (factorFieldCount + d) * k
        for j in 0..<k { e[j] = x[d] * vd[d * k + j] }
        fieldVector[vectors] = UnsafePointer(e)
        inverseNorms[vectors] = 1
        vectors += 1
      }
    }
    // Pass 2: Σ e_f and Σ e_f², one vector of lanes at a time (accumulators stay in registers).
    let lanes = V.scalarCount
    var pair = V()
    for c in 0..<(k / lanes) {
      var s = V(), q = V()
      for f in 0..<vectors {
        guard let e = fieldVector[f] else { continue }
        let ev = V.load(e, c)
        s += ev
        q += ev * ev
      }
      s.store(sum, c)
      pair += s * s - q
    }
    var pairTail: Float = 0
    for j in (k / lanes * lanes)..<k {
      var s: Float = 0, q: Float = 0
      for f in 0..<vectors {
        guard let e = fieldVector[f] else { continue }
        s += e[j]
        q += e[j] * e[j]
      }
      sum[j] = s
      pairTail += s * s - q
    }
    return 0.5 * (pair.sum() + pairTail)
  }

  /// Scores every record of a resolved batch (no updates).
  func predict(_ b: ResolvedBatch, into logits: UnsafeMutablePointer<Float>) {
    prepare(b, gradients: false)
    // The widest vector whose width divides k (a remainder runs in scalars).
    if k % 16 == 0 { predictAll(b, logits, SIMD16<Float>.self) }
    else if k % 8 == 0 { predictAll(b, logits, SIMD8<Float>.self) }
    else if k % 4 == 0 { predictAll(b, logits, SIMD4<Float>.self) }
    else { predictAll(b, logits, SIMD2<Float>.self) }
  }

  private func predictAll<V: SIMDLanes>(_ b: ResolvedBatch, _ logits: UnsafeMutablePointer<Float>, _: V.Type) {
    linearLogits(b, logits)
    if k > 0 { for r in 0..<b.count { logits[r] += factorTerm(b, r, V.self) } }
  }

  /// One training step on the batch: returns the weighted loss sum and the weight sum.
  func train(_ b: ResolvedBatch) throws -> (loss: Double, weight: Double) {
    let r = try computeGradients(b)
    if r.weight > 0 { applyUpdates(b) }
    return r
  }

  /// The gradient computed for unique row u of table t by the last `computeGradients` (tests).
  func gradient(table t: Int, unique u: Int) -> [Float] {
    let dim = model.tables[t].dimension
    return Array(UnsafeBufferPointer(start: grads[t].base + u * dim, count: dim))
  }

  /// The dense block's gradient from the last `computeGradients` (tests).
  var denseGradient: [Float] { Array(UnsafeBufferPointer(start: denseGrad, count: model.dense.count)) }

  /// Forward and backward over the batch, leaving the gradients in this worker's scratch: per
  /// unique row the summed per-example gradient, for the dense block the batch mean.
  func computeGradients(_ b: ResolvedBatch) throws -> (loss: Double, weight: Double) {
    let n = b.count
    var weightSum: Float = 0
    for r in 0..<n { weightSum += b.weights[r] }
    if n == 0 || weightSum <= 0 { return (0, 0) }
    prepare(b, gradients: true)
    if k % 16 == 0 { return try backwardAll(b, weightSum, SIMD16<Float>.self) }
    if k % 8 == 0 { return try backwardAll(b, weightSum, SIMD8<Float>.self) }
    if k % 4 == 0 { return try backwardAll(b, weightSum, SIMD4<Float>.self) }
    return try backwardAll(b, weightSum, SIMD2<Float>.self)
  }

  private func backwardAll<V: SIMDLanes>(_ b: ResolvedBatch, _ weightSum: Float, _: V.Type) throws -> (loss: Double, weight: Double) {
    let n = b.count
    logitScratch.count = 0
    logitScratch.reserve(n)
    gradientScratch.count = 0
    gradientScratch.reserve(n)
    let zs = logitScratch.base, gs = gradientScratch.base
    linearLogits(b, zs)
    var lossSum: Double = 0
    for r in 0..<n {
      // FM's term last, as `predict` adds it; it leaves e_f, 1/norm and Σ e_f for `backward`.
      let z = k > 0 ? zs[r] + factorTerm(b, r, V.self) : zs[r]
      let y = b.labels[r], w = b.weights[r]
      let loss = Self.softplus(z) - y * z
      if !loss.isFinite {
        func show(_ v: Float) -> String { v.isNaN ? "NaN" : "\(v)" }
        throw TrainingError(message: "the loss became \(show(loss)) at step \(b.step + 1) (logit \(show(z)), \(b.describeRecord(r))): training diverged; lower the learning rates or add regularisation")
      }
      lossSum += Double(w * loss)
      // Per-id parameters get the summed per-example gradient (the per-coordinate FTRL/AdaGrad
      // semantics of McMahan et al., whose α, β and λ are set at per-example scale whatever the
      // batch size); the dense block gets the batch mean, like any mini-batch optimizer.
      let g = (Self.sigmoid(z) - y) * w
      gs[r] = g
      if g == 0 { continue }
      backward(b, r, g: g, gd: g / weightSum, V.self)
    }
    linearBackward(b, gs)
    return (lossSum, Double(weightSum))
  }

  /// Example r's gradient into the bias, the dense weights and (FM) its factor rows; the
  /// linear rows get theirs for the whole batch in `linearBackward`.
  @inline(__always)
  private func backward<V: SIMDLanes>(_ b: ResolvedBatch, _ r: Int, g: Float, gd: Float, _: V.Type) {
    denseGrad[width] += gd
    if width > 0 {
      let x = b.dense + r * width
      for j in 0..<width { denseGrad[j] += gd * x[j] }
    }
    if k == 0 { return }
    // FM: ∂ŷ/∂e_f = S − e_f, scattered to the field's rows through the combiner.
    let lanes = V.scalarCount
    let chunks = k / lanes
    for f in 0..<factorFieldCount {
      guard let e = fieldVector[f] else { continue }
      let v = views[factorFields[f]]
      let lo = Int(v.starts[r]), hi = Int(v.starts[r + 1])
      let pos = v.factorPositions.unsafelyUnwrapped, gf = v.factorGradient.unsafelyUnwrapped
      let scale = g * inverseNorms[f]
      for i in lo..<hi {
        let wv = v.values?[i] ?? 1
        if v.combiner != .sum && wv <= 0 { continue }
        let dst = gf + Int(pos[i]) * k
        let c = V(repeating: scale * wv)
        for ch in 0..<chunks {
          let updated = V.load(dst, ch) + c * (V.load(sum, ch) - V.load(e, ch))
          updated.store(dst, ch)
        }
        for j in (chunks * lanes)..<k { dst[j] += scale * wv * (sum[j] - e[j]) }
      }
    }
    if model.denseFields && width > 0 {
      let x = b.dense + r * width
      let dg = denseGrad + width + 1
      for d in 0..<width {
        let e = fieldVectors + (factorFieldCount + d) * k
        let c = gd * x[d]
        for j in 0..<k { dg[d * k + j] += c * (sum[j] - e[j]) }
      }
    }
  }

  /// One optimizer step per touched row (with the lazy L2 on the rows this batch touched), and
  /// one for the dense block, from the gradients `computeGradients` left.
  func applyUpdates(_ b: ResolvedBatch) {
    let m = model
    for t in m.tables.indices {
      let table = m.tables[t]
      let count = b.unique[t].count
      if count == 0 { continue }
      table.optimizer.updateRows(b.unique[t].base, gradients: grads[t].base, count: count,
                                 dimension: table.dimension, step: b.step, l2: table.lazyL2)
    }
    m.dense.apply(denseGrad)
  }
}

/// A SIMD vector of Float lanes with unaligned loads and stores at chunk `c` of a row (lanes
/// floats per chunk); the factor kernels are generic over it and specialized per width.
protocol SIMDLanes: SIMD where Scalar == Float {}

extension SIMDLanes {
  @inline(__always)
  static func load(_ p: UnsafePointer<Float>, _ c: Int) -> Self {
    UnsafeRawPointer(p + c * scalarCount).loadUnaligned(as: Self.self)
  }

  @inline(__always)
  static func load(_ p: UnsafeMutablePointer<Float>, _ c: Int) -> Self { load(UnsafePointer(p), c) }

  @inline(__always)
  func store(_ p: UnsafeMutablePointer<Float>, _ c: Int) {
    UnsafeMutableRawPointer(p + c * scalarCount).storeBytes(of: self, as: Self.self)
  }
}

extension SIMD16: SIMDLanes where Scalar == Float {}
extension SIMD8: SIMDLanes where Scalar == Float {}
extension SIMD4: SIMDLanes where Scalar == Float {}
extension SIMD2: SIMDLanes where Scalar == Float {}
