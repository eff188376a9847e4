/// bucketized_column: bucket = number of boundaries b with b <= v (upper_bound), boundaries stored as float32
/// and compared in the input's precision; NaN goes to the last bucket.
///
/// The comparison follows TensorFlow's `Bucketize` kernel exactly, including three details:
/// - the kernel evaluates `v < boundary` with C++'s usual conversions: a float64 input is compared
///   against the widened float32 boundary (so `0.1 < Float(0.1)` lands below it), and an **int64
///   input is converted to float32** first (so 16777217 compares as 16777216);
/// - TensorFlow runs CPU kernels with denormals flushed to zero, so a subnormal input or boundary
///   compares as 0 (the golden float32 -1e-45 lands in 0.0's bucket);
/// - no comparison with NaN is true, so NaN passes every boundary and gets the last bucket.
public struct Bucketizer: Sendable, Equatable, Codable {
  /// The boundaries as given: strictly ascending float32 values (init throws otherwise).
  public let boundaries: [Float]
  /// `boundaries` with subnormals flushed to zero, which is what the kernel compares against.
  @usableFromInline let comparedBoundaries: [Float]

  /// - Throws: `TFCompatError.invalidBoundaries` if the list is empty, holds a NaN, or is not
  ///   strictly ascending (the checks `bucketized_column` makes).
  public init(boundaries: [Float]) throws {
    guard !boundaries.isEmpty else { throw TFCompatError(.invalidBoundaries, "boundaries must not be empty") }
    if let i = boundaries.firstIndex(where: \.isNaN) {
      throw TFCompatError(.invalidBoundaries, "boundary \(i) is NaN")
    }
    for i in 1..<boundaries.count where !(boundaries[i - 1] < boundaries[i]) {
      throw TFCompatError(.invalidBoundaries,
        "boundaries must be strictly ascending: boundary \(i - 1) is \(boundaries[i - 1]) and boundary \(i) is \(boundaries[i])")
    }
    self.boundaries = boundaries
    self.comparedBoundaries = boundaries.map(Self.flushSubnormal)
  }

  /// `boundaries.count + 1`: the range `[b_last, +inf)` (and NaN) is the last bucket.
  public var bucketCount: Int { boundaries.count + 1 }

  @inlinable @inline(__always)
  static func flushSubnormal(_ v: Float) -> Float { v.isSubnormal ? 0 : v }

  @inlinable @inline(__always)
  static func flushSubnormal(_ v: Double) -> Double { v.isSubnormal ? 0 : v }

  /// The first index whose boundary compares above the input (`std::upper_bound`).
  ///
  /// Branch-free: the search always halves the same way and picks each half with a select, not
  /// a jump. Inputs are random against the boundaries, so a branching search mispredicts about
  /// every other step, and those stalls cost more than the whole search otherwise does.
  /// The answer k (the first index where `isBelow` holds, or count) stays in [base, base + n].
  @inlinable @inline(__always)
  func upperBound(_ isBelow: (Float) -> Bool) -> Int {
    comparedBoundaries.withUnsafeBufferPointer { b in
      let p = b.baseAddress!  // init refuses an empty list
      var base = 0, n = b.count
      while n > 1 {
        let half = n &>> 1
        base = isBelow(p[base &+ half]) ? base : base &+ half
        n &-= half
      }
      return isBelow(p[base]) ? base : base &+ 1
    }
  }

  /// The bucket of a float32 input.
  @inlinable
  public func bucket(_ v: Float) -> Int {
    let x = Self.flushSubnormal(v)
    return upperBound { x < $0 }
  }

  /// The bucket of a float64 input, compared against the float32 boundaries widened to float64.
  @inlinable
  public func bucket(_ v: Double) -> Int {
    let x = Self.flushSubnormal(v)
    return upperBound { x < Double($0) }
  }

  /// The bucket of an int64 input, converted to float32 (round to nearest even) as the kernel's
  /// `int64 < float` comparison does.
  @inlinable
  public func bucket(_ v: Int64) -> Int {
    let x = Float(v)
    return upperBound { x < $0 }
  }

  /// The sparse id `bucketized_column` emits for element `dimension` of a shape-(d,) source:
  /// each element gets its own range of `bucketCount` ids.
  @inlinable
  public func sparseID(bucket: Int, dimension: Int) -> Int64 {
    Int64(bucket + dimension * bucketCount)
  }

  public static func == (a: Bucketizer, b: Bucketizer) -> Bool { a.boundaries == b.boundaries }

  private enum CodingKeys: String, CodingKey { case boundaries }

  /// Decoding validates like `init(boundaries:)`, so a config cannot smuggle in unsorted boundaries.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try self.init(boundaries: c.decode([Float].self, forKey: .boundaries))
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(boundaries, forKey: .boundaries)
  }
}
