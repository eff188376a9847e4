import Foundation

/// A KLL quantile sketch (Karnin, Lang, Liberty 2016): mergeable, O(k log(n/k)) memory, with
/// normalised rank error at most `errorBound(k:)` with 99% confidence. Its coin flips come from a
/// seeded generator, so the same values in the same order give the same sketch.
public struct QuantileSketch: Sendable {
  public let k: Int
  var levels: [[Double]] = [[]]
  var rng: UInt64
  public private(set) var count = 0
  public private(set) var nanCount = 0
  public private(set) var minValue = Double.infinity
  public private(set) var maxValue = -Double.infinity

  public init(k: Int = 400, seed: UInt64 = 0x5EED) {
    self.k = max(k, 8)
    rng = seed
  }

  /// The normalised rank error bound with 99% confidence: ε(k) ≈ 2.446 / k^0.9433, the
  /// single-sided constant Apache DataSketches calibrated for this algorithm (k = 400 → 0.86%).
  public static func errorBound(k: Int) -> Double { 2.446 / pow(Double(k), 0.9433) }

  /// Capacity of level h when there are `height` levels: the top holds k, each level below 2/3 of the one above.
  func capacity(_ h: Int) -> Int {
    max(2, Int((Double(k) * pow(2.0 / 3.0, Double(levels.count - 1 - h))).rounded(.up)))
  }

  /// Items held across all levels; compaction starts when it reaches the total capacity.
  private(set) var retained = 0
  private var totalCapacity = 0
  /// `capacity(h)` for the current height, recomputed only when a level is added (the pow calls
  /// would otherwise run on every compaction, which happens every few inserts at low levels).
  private var capacities: [Int] = []

  private mutating func updateCapacity() {
    capacities = (0..<levels.count).map(capacity)
    totalCapacity = capacities.reduce(0, +)
  }

  public mutating func insert(_ v: Double) {
    if v.isNaN { nanCount += 1; return }
    count += 1
    if v < minValue { minValue = v }
    if v > maxValue { maxValue = v }
    levels[0].append(v)
    retained += 1
    if totalCapacity == 0 { updateCapacity() }
    if retained >= totalCapacity { compress() }
  }

  private mutating func coin() -> Int {
    rng &+= 0x9E37_79B9_7F4A_7C15
    var z = rng
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return Int((z ^ (z >> 31)) & 1)
  }

  /// Compacts the lowest full level: sort it, keep every other item (a random half) one level up
  /// where each weighs twice as much.
  mutating func compress() {
    if capacities.count != levels.count { updateCapacity() }
    while retained >= totalCapacity {
      guard let h = levels.indices.first(where: { levels[$0].count >= capacities[$0] }) else { break }
      if h == levels.count - 1 {
        levels.append([])
        updateCapacity()
      }
      // In place: sort, promote every other item (from a random offset) of the even-length prefix,
      // and keep the odd one out (the largest) at this level.
      levels[h].sort()
      let n = levels[h].count
      let even = n & ~1
      var i = coin()
      var promoted = 0
      while i < even {
        levels[h + 1].append(levels[h][i])
        promoted += 1
        i += 2
      }
      let leftover = n - even
      if leftover == 1 { levels[h][0] = levels[h][n - 1] }
      levels[h].removeSubrange(leftover..<n)
      retained -= n - leftover - promoted
    }
  }

  /// Adds another sketch's items (the error bound holds for the union).
  public mutating func merge(_ other: QuantileSketch) {
    while levels.count < other.levels.count { levels.append([]) }
    for (h, items) in other.levels.enumerated() { levels[h].append(contentsOf: items) }
    retained += other.retained
    count += other.count
    nanCount += other.nanCount
    minValue = min(minValue, other.minValue)
    maxValue = max(maxValue, other.maxValue)
    compress()
  }

  /// Weighted items sorted by value.
  func sortedItems() -> [(Double, Int)] {
    var items: [(Double, Int)] = []
    for (h, level) in levels.enumerated() { for v in level { items.append((v, 1 << h)) } }
    items.sort { $0.0 < $1.0 }
    return items
  }

  /// The value at normalised rank q ∈ [0, 1] (the smallest retained value whose cumulative weight
  /// reaches q·n); nil when the sketch is empty.
  public func quantile(_ q: Double) -> Double? {
    quantiles([q]).first ?? nil
  }

  public func quantiles(_ qs: [Double]) -> [Double?] {
    guard count > 0 else { return qs.map { _ in nil } }
    let items = sortedItems()
    let total = Double(items.reduce(0) { $0 + $1.1 })
    return qs.map { q in
      if q <= 0 { return minValue }
      if q >= 1 { return maxValue }
      let target = q * total
      var cumulative = 0.0
      for (v, w) in items {
        cumulative += Double(w)
        if cumulative >= target { return v }
      }
      return maxValue
    }
  }

  /// Normalised rank of v: the estimated fraction of values ≤ v.
  public func rank(_ v: Double) -> Double {
    let items = sortedItems()
    let total = Double(items.reduce(0) { $0 + $1.1 })
    guard total > 0 else { return 0 }
    return Double(items.filter { $0.0 <= v }.reduce(0) { $0 + $1.1 }) / total
  }

  /// Bucket boundaries for `buckets` equal-frequency buckets: the interior quantiles, rounded to
  /// float32 (TensorFlow stores boundaries as float32) and de-duplicated, so heavily tied data
  /// gets fewer buckets rather than empty ones.
  public func boundaries(buckets: Int) -> [Float] {
    guard buckets >= 2, count > 0 else { return [] }
    let qs = (1..<buckets).map { Double($0) / Double(buckets) }
    var out: [Float] = []
    for q in quantiles(qs) {
      guard let q else { continue }
      let f = Float(q)
      if f.isFinite, out.last.map({ $0 < f }) ?? true { out.append(f) }
    }
    // A boundary at the minimum makes an always-empty first bucket.
    if out.first == Float(minValue) && out.count > 1 { out.removeFirst() }
    return out
  }
}
