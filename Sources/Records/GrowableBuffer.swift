/// A growable array over manually managed memory, so hot loops append without Array's
/// uniqueness checks. The owner must call `deallocate()` exactly once.
public struct GrowableBuffer<T: BitwiseCopyable> {
  public var base: UnsafeMutablePointer<T>
  public var count = 0
  public private(set) var capacity: Int

  public init(capacity: Int = 64) {
    self.capacity = max(capacity, 4)
    base = .allocate(capacity: self.capacity)
  }

  public func deallocate() { base.deallocate() }

  @usableFromInline @inline(never)
  mutating func grow(to minimum: Int) {
    let newCap = max(minimum, capacity * 2)
    let nb = UnsafeMutablePointer<T>.allocate(capacity: newCap)
    nb.update(from: base, count: count)
    base.deallocate()
    base = nb
    capacity = newCap
  }

  @inlinable @inline(__always)
  public mutating func reserve(_ extra: Int) {
    // Wrapping arithmetic: counts are bounded by memory, and the overflow checks cost in hot loops.
    if count &+ extra > capacity { grow(to: count &+ extra) }
  }

  @inlinable @inline(__always)
  public mutating func append(_ v: T) {
    if count == capacity { grow(to: count &+ 1) }
    base[count] = v
    count &+= 1
  }

  @inlinable
  public mutating func append(_ src: UnsafePointer<T>, count n: Int) {
    reserve(n)
    (base + count).update(from: src, count: n)
    count += n
  }

  @inlinable
  public var buffer: UnsafeBufferPointer<T> { UnsafeBufferPointer(start: base, count: count) }

  /// Sets every element to `value` and the count to `n` (growing if needed).
  @inlinable
  public mutating func fill(_ value: T, count n: Int) {
    reserve(n - count)
    base.update(repeating: value, count: n)
    count = n
  }
}

extension GrowableBuffer where T == UInt8 {
  @inlinable
  public mutating func append(raw src: UnsafeRawPointer, count n: Int) {
    reserve(n)
    UnsafeMutableRawPointer(base + count).copyMemory(from: src, byteCount: n)
    count += n
  }
}
