import CRecordsSupport
/// A dynamic embedding table: Int64 id → one row of Float32 weights with its optimizer state beside it.
///
/// **Row layout.** Each row is one contiguous slab of `rowStride = dimension + stateWidth` floats:
/// the `dimension` weights first, then the optimizer's state for that row, e.g.
/// `[w | z | n]` for FTRL or `[w | a]` for AdaGrad (see each `RowOptimizer`). One row fetch
/// therefore brings the weights and the state the update needs (MODELS.md §5.2).
///
/// **Ids.** Rows are created on first sight (`lookup`) and found through an open-addressing map
/// that compares full 64-bit ids, so distinct ids never share a row. A new row's weights are
/// drawn from a generator seeded by `(seed, id)` only: its initial value does not depend on the
/// order in which ids arrive or on which other ids exist.
///
/// **Stable pointers.** Rows live in chunks that are never moved or freed while the table
/// exists, so a pointer returned by `lookup`/`find` stays valid — creating more rows does not
/// invalidate it. (Chunk `c ≥ 1` holds rows `[64·2^(c−1), 64·2^c)`, so the table grows by
/// doubling without copying.)
///
/// **Updates.** `applySparse` sums the gradients of duplicate ids first and then updates each
/// touched row exactly once (FTRL and the group-lasso prox are non-linear in `g`, so applying a
/// repeated id twice would be wrong; MODELS.md §4.2, §6.5).
///
/// **Thread safety.** None inside. `@unchecked Sendable` so the trainer can own a table on a
/// worker thread: use a table from one thread at a time, or guard every call with a lock.
/// Concurrent `find` calls are safe only while no thread calls `lookup` or `applySparse`.
public final class EmbeddingTable: @unchecked Sendable {
  /// Weights per row (`k`).
  public let dimension: Int
  /// Optimizer-state floats per row.
  public let stateWidth: Int
  /// Floats per row: `dimension + stateWidth`.
  public let rowStride: Int
  public let initializer: EmbeddingInitializer
  public let seed: UInt64
  /// The optimizer whose state layout the rows hold; it initialises the state of new rows.
  public let optimizer: any RowOptimizer

  /// Number of rows (distinct ids seen).
  public private(set) var rowCount = 0
  /// Rows whose weights are all exactly zero (pruned by group lasso or L1, or initialised to 0).
  public internal(set) var zeroedRows = 0

  static let firstChunkShift = 6
  static let maxChunks = 40
  private let chunks: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
  private var chunkCount = 0
  private var rowCapacity = 0
  private var index: IdIndex
  /// Rows of the ids in 0..<directLimit by direct indexing: bounded ids (vocabularies, hash
  /// buckets) then cost one load instead of a hash probe. Other ids use `index`. Loops over
  /// many ids take a copy, which stays in registers where the table's field would be reloaded
  /// at every id; rows are created through `lookupRow`, which keeps the map up to date.
  public let directMap: DirectRowMap
  /// Ids below this use `directMap`.
  public var directLimit: Int64 { directMap.limit }
  private var ids: UnsafeMutablePointer<Int64>
  private var idsCapacity: Int
  // applySparse scratch, reused across calls so a steady-state update allocates nothing.
  private var scratchCapacity = 0
  private var scratchUniqueRows: UnsafeMutablePointer<Int32>
  private var scratchGradients: UnsafeMutablePointer<Float>
  private var probeCapacity = 0
  private var probeRows: UnsafeMutablePointer<Int32>
  private var probeUnique: UnsafeMutablePointer<Int32>

  /// An empty table.
  ///
  /// - Parameters:
  ///   - dimension: weights per row.
  ///   - optimizer: decides the state layout and initialises the state of new rows.
  ///   - initializer: how new rows' weights are drawn.
  ///   - seed: with the id, determines a new row's initial weights.
  ///   - expectedRows: pre-sizes the id map.
  ///   - directIdLimit: when the ids are known to lie in 0..<limit (a vocabulary or hash-bucket
  ///     column), rows are found by direct indexing (4 bytes per possible id).
  public init(dimension: Int, optimizer: any RowOptimizer, initializer: EmbeddingInitializer = .zeros,
              seed: UInt64 = 0, expectedRows: Int = 0, directIdLimit: Int64 = 0) {
    precondition(dimension > 0, "EmbeddingTable needs dimension > 0, got \(dimension)")
    self.dimension = dimension
    self.optimizer = optimizer
    self.stateWidth = optimizer.stateWidth(dimension: dimension)
    self.rowStride = dimension + stateWidth
    self.initializer = initializer
    self.seed = seed
    chunks = .allocate(capacity: EmbeddingTable.maxChunks)
    chunks.initialize(repeating: nil, count: EmbeddingTable.maxChunks)
    index = IdIndex(minimumCapacity: expectedRows)
    directMap = DirectRowMap(limit: directIdLimit)
    idsCapacity = Swift.max(expectedRows, 64)
    ids = .allocate(capacity: idsCapacity)
    scratchUniqueRows = .allocate(capacity: 1)
    scratchGradients = .allocate(capacity: 1)
    probeRows = .allocate(capacity: 1)
    probeUnique = .allocate(capacity: 1)
  }

  deinit {
    for c in 0..<chunkCount { chunks[c].map { UnsafeMutableRawPointer($0).deallocate() } }
    chunks.deallocate()
    index.deallocate()
    directMap.deallocate()
    ids.deallocate()
    scratchUniqueRows.deallocate()
    scratchGradients.deallocate()
    probeRows.deallocate()
    probeUnique.deallocate()
  }

  // MARK: Memory accounting

  /// Bytes of one row: weights plus optimizer state.
  public var bytesPerRow: Int { rowStride * MemoryLayout<Float>.stride }

  /// Rows with at least one non-zero weight (the ones an export keeps).
  public var liveRows: Int { rowCount - zeroedRows }

  /// Bytes currently allocated by the table: row chunks (including their unused tail), the id
  /// map, the id list and the update scratch.
  public var memoryBytes: Int {
    let f = MemoryLayout<Float>.stride
    return rowCapacity * rowStride * f + index.memoryBytes + idsCapacity * MemoryLayout<Int64>.stride
      + Int(directLimit) * MemoryLayout<Int32>.stride
      + scratchCapacity * (MemoryLayout<Int32>.stride + dimension * f)
      + probeCapacity * 2 * MemoryLayout<Int32>.stride
  }

  // MARK: Rows

  /// The slab of row `index` (weights, then state); valid for the table's lifetime.
  @inline(__always)
  func rowPointer(_ index: Int) -> UnsafeMutablePointer<Float> { locator.slab(index) }

  /// Finds row slabs from raw pointers alone, so hot loops on other threads need no reference
  /// to the table (and no reference counting per row). Valid for the table's lifetime.
  var locator: SlabLocator { SlabLocator(chunks: chunks, rowStride: rowStride) }

  /// The weights of `id`'s row, creating and initialising the row if the id is new.
  ///
  /// The optimizer state follows the weights: `lookup(id) + dimension` points at it.
  public func lookup(_ id: Int64) -> UnsafeMutablePointer<Float> {
    rowPointer(lookupRow(id))
  }

  /// The row index of `id`, creating the row if the id is new.
  @inline(__always)
  public func lookupRow(_ id: Int64) -> Int {
    let r = findRow(id)
    return r >= 0 ? r : createRow(id)
  }

  /// Starts loading what `findRow(id)` will read: batches look ids up in random order, and
  /// overlapping the misses beats stalling on each.
  @inline(__always)
  public func prefetchLookup(_ id: Int64) {
    if directMap.covers(id) { directMap.prefetch(id) } else { index.prefetch(id) }
  }

  /// Row index of `id`, or -1.
  @inline(__always)
  public func findRow(_ id: Int64) -> Int {
    return directMap.covers(id) ? directMap.row(id) : index.find(id)
  }

  /// The weights of `id`'s row, or nil if the id was never seen; never modifies the table
  /// (for serving and evaluation).
  public func find(_ id: Int64) -> UnsafeMutablePointer<Float>? {
    let r = findRow(id)
    return r >= 0 ? rowPointer(r) : nil
  }

  /// The dense index of `id`'s row (0..<rowCount, in creation order), or nil.
  public func rowIndex(of id: Int64) -> Int? {
    let r = findRow(id)
    return r >= 0 ? r : nil
  }

  /// The slab (weights, then state) of row `index`, for hot loops that resolved ids themselves.
  @inline(__always)
  public func slab(ofRow index: Int) -> UnsafeMutablePointer<Float> { rowPointer(index) }

  /// The id of row `index`.
  public func id(ofRow index: Int) -> Int64 {
    precondition(index >= 0 && index < rowCount, "row \(index) outside \(rowCount) rows")
    return ids[index]
  }

  /// The weights of row `index` (0..<rowCount).
  public func weights(ofRow index: Int) -> UnsafeMutablePointer<Float> {
    precondition(index >= 0 && index < rowCount, "row \(index) outside \(rowCount) rows")
    return rowPointer(index)
  }

  /// Calls `body(id, weights)` for every row in creation order.
  public func forEachRow(_ body: (Int64, UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
    for r in 0..<rowCount {
      try body(ids[r], UnsafeMutableBufferPointer(start: rowPointer(r), count: dimension))
    }
  }

  /// Appends a row for the new `id`; with `initialize` false its slab is left zero for the
  /// caller to fill (checkpoint restore).
  func createRow(_ id: Int64, initialize: Bool = true) -> Int {
    precondition(rowCount < Int(Int32.max) - 1, "EmbeddingTable is full (\(rowCount) rows)")
    if rowCount == rowCapacity { addChunk() }
    if rowCount == idsCapacity {
      let bigger = UnsafeMutablePointer<Int64>.allocate(capacity: idsCapacity * 2)
      bigger.update(from: ids, count: rowCount)
      ids.deallocate()
      ids = bigger
      idsCapacity *= 2
    }
    let r = rowCount
    let p = rowPointer(r)
    if initialize {
      initializer.fill(p, dimension: dimension, seed: seed, id: id)
      optimizer.initializeState(p + dimension, weights: p, dimension: dimension)
    }
    ids[r] = id
    if directMap.covers(id) { directMap.setRow(r, of: id) } else { index.insert(id, row: r) }
    rowCount = r &+ 1
    if BLAS.isAllZero(count: dimension, x: p) { zeroedRows &+= 1 }
    return r
  }

  private func addChunk() {
    let c = chunkCount
    precondition(c < EmbeddingTable.maxChunks, "EmbeddingTable chunk directory exhausted")
    let rows = c == 0 ? 1 << EmbeddingTable.firstChunkShift : 1 << (EmbeddingTable.firstChunkShift + c - 1)
    // Cache-line aligned, so a 16-float row of weights is one line and its state the next.
    let chunk = UnsafeMutableRawPointer.allocate(byteCount: rows * rowStride * MemoryLayout<Float>.stride, alignment: 64)
      .bindMemory(to: Float.self, capacity: rows * rowStride)
    chunk.initialize(repeating: 0, count: rows * rowStride)
    chunks[c] = chunk
    chunkCount = c + 1
    rowCapacity += rows
  }

  // MARK: Sparse updates

  /// Applies one optimizer step to the rows of `ids`, with `gradients` holding one `dimension`-row
  /// per id (`ids.count × dimension`, row-major).
  ///
  /// Gradients of repeated ids are summed (in order of appearance) and each touched row is
  /// updated once; rows of unseen ids are created first. Untouched rows are not visited.
  ///
  /// - Parameters:
  ///   - optimizer: must have this table's state layout (it may differ in hyperparameters,
  ///     e.g. a decayed learning rate).
  ///   - step: the global step, for schedules such as AdaGrad's accumulator decay.
  public func applySparse<O: RowOptimizer>(ids batchIds: UnsafeBufferPointer<Int64>, gradients: UnsafePointer<Float>,
                                           optimizer: O, step: Int64 = 0) {
    precondition(optimizer.stateLayout == self.optimizer.stateLayout
                   && optimizer.stateWidth(dimension: dimension) == stateWidth,
                 "optimizer layout \(optimizer.stateLayout) does not match the table's \(self.optimizer.stateLayout)")
    let n = batchIds.count
    if n == 0 { return }
    let k = dimension
    // The probe table is sized for this batch (a power of two ≥ 2n), not its high-water mark,
    // so a small batch after a large one clears only what it uses.
    let probeSize = reserveScratch(n)
    let mask = probeSize &- 1
    probeRows.update(repeating: -1, count: probeSize)
    var unique = 0
    for i in 0..<n {
      let r = lookupRow(batchIds[i])
      let row = Int32(truncatingIfNeeded: r)
      var h = Int(truncatingIfNeeded: SeededRandom.mix(UInt64(r))) & mask
      while true {
        let s = probeRows[h]
        if s == -1 {
          probeRows[h] = row
          probeUnique[h] = Int32(truncatingIfNeeded: unique)
          scratchUniqueRows[unique] = row
          (scratchGradients + unique * k).update(from: gradients + i * k, count: k)
          unique &+= 1
          break
        }
        if s == row {
          BLAS.axpy(count: k, alpha: 1, x: gradients + i * k, y: scratchGradients + Int(probeUnique[h]) * k)
          break
        }
        h = (h &+ 1) & mask
      }
    }
    for u in 0..<unique {
      let p = rowPointer(Int(scratchUniqueRows[u]))
      let wasZero = BLAS.isAllZero(count: k, x: p)
      optimizer.update(weights: p, state: p + k, gradient: scratchGradients + u * k, dimension: k, step: step)
      let isZero = BLAS.isAllZero(count: k, x: p)
      if wasZero != isZero { zeroedRows += isZero ? 1 : -1 }
    }
  }

  /// Array convenience: `gradients` is `ids.count × dimension`.
  public func applySparse<O: RowOptimizer>(ids batchIds: [Int64], gradients: Matrix, optimizer: O, step: Int64 = 0) {
    precondition(gradients.rows == batchIds.count && gradients.cols == dimension,
                 "gradients must be \(batchIds.count)×\(dimension), got \(gradients.shapeDescription)")
    batchIds.withUnsafeBufferPointer { applySparse(ids: $0, gradients: gradients.data, optimizer: optimizer, step: step) }
  }

  /// `applySparse` with the table's own optimizer.
  public func applySparse(ids batchIds: [Int64], gradients: Matrix, step: Int64 = 0) {
    applySparse(ids: batchIds, gradients: gradients, optimizer: optimizer, step: step)
  }

  private func reserveScratch(_ n: Int) -> Int {
    if n > scratchCapacity {
      scratchUniqueRows.deallocate()
      scratchGradients.deallocate()
      scratchCapacity = Swift.max(n, scratchCapacity * 2)
      scratchUniqueRows = .allocate(capacity: scratchCapacity)
      scratchGradients = .allocate(capacity: scratchCapacity * dimension)
    }
    var p = 16
    while p < 2 * n { p <<= 1 }
    if p > probeCapacity {
      probeRows.deallocate()
      probeUnique.deallocate()
      probeCapacity = p
      probeRows = .allocate(capacity: p)
      probeUnique = .allocate(capacity: p)
    }
    return p
  }
}

/// The slab of a row from the chunk directory of an `EmbeddingTable` (which never moves).
struct SlabLocator: @unchecked Sendable {
  let chunks: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>
  let rowStride: Int

  @inline(__always)
  func slab(_ index: Int) -> UnsafeMutablePointer<Float> {
    let q = index >> EmbeddingTable.firstChunkShift
    if q == 0 { return chunks[0].unsafelyUnwrapped + index * rowStride }
    let c = Int.bitWidth - q.leadingZeroBitCount
    let start = 1 << (EmbeddingTable.firstChunkShift + c - 1)
    return chunks[c].unsafelyUnwrapped + (index - start) * rowStride
  }
}

/// A table's direct map: row index + 1 by id for ids in 0..<limit (0 = no row yet), or none
/// (limit 0). A value, so a loop can hold it in registers; the table owns the memory.
public struct DirectRowMap: @unchecked Sendable {
  private let slots: UnsafeMutablePointer<Int32>?
  /// Ids below this (and not negative) are in the map.
  public let limit: Int64

  init(limit: Int64) {
    self.limit = Swift.max(0, limit)
    if self.limit > 0 {
      let d = UnsafeMutablePointer<Int32>.allocate(capacity: Int(self.limit))
      d.initialize(repeating: 0, count: Int(self.limit))
      slots = d
    } else {
      slots = nil
    }
  }

  func deallocate() { slots?.deallocate() }

  /// Whether the map holds `id`'s row (present or not yet created).
  @inline(__always)
  public func covers(_ id: Int64) -> Bool { id >= 0 && id < limit }

  /// The row of a covered id, or -1 when it has none yet.
  @inline(__always)
  public func row(_ id: Int64) -> Int { Int(slots.unsafelyUnwrapped[Int(id)]) &- 1 }

  /// Starts loading a covered id's slot.
  @inline(__always)
  public func prefetch(_ id: Int64) { ctr_prefetch(slots.unsafelyUnwrapped + Int(id)) }

  @inline(__always)
  func setRow(_ r: Int, of id: Int64) { slots.unsafelyUnwrapped[Int(id)] = Int32(truncatingIfNeeded: r &+ 1) }
}
