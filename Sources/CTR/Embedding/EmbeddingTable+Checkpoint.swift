import Records

// Binary checkpoint of an EmbeddingTable, restoring ids, weights and optimizer state exactly.
//
// Layout (all integers and floats little-endian):
//   "CTREMBT1"                 8-byte magic
//   u32 version (1)
//   u32 dimension, u32 stateWidth
//   u32 n, n bytes             the optimizer's stateLayout, UTF-8
//   u64 seed
//   u8 initializer kind, f32 initializer parameter
//   u64 rowCount
//   rowCount × (i64 id, rowStride × f32 bit patterns)   rows in creation order
//   u32 CRC32C of every byte before it
//
// Rows are written in creation order, so a restored table assigns the same row indices. Floats
// are stored as bit patterns: NaNs and signed zeros survive, and the round trip is exact.
extension EmbeddingTable {
  static let checkpointMagic: [UInt8] = Array("CTREMBT1".utf8)
  static let checkpointVersion: UInt32 = 1

  /// Appends the table's checkpoint to `out`.
  public func write(to out: inout [UInt8]) {
    let start = out.count
    out.reserveCapacity(start + 64 + rowCount * (8 + bytesPerRow))
    out.append(contentsOf: EmbeddingTable.checkpointMagic)
    appendLE(&out, EmbeddingTable.checkpointVersion)
    appendLE(&out, UInt32(dimension))
    appendLE(&out, UInt32(stateWidth))
    let layout = Array(optimizer.stateLayout.utf8)
    appendLE(&out, UInt32(layout.count))
    out.append(contentsOf: layout)
    appendLE(&out, seed)
    let code = initializer.code
    out.append(code.kind)
    appendLE(&out, code.parameter.bitPattern)
    appendLE(&out, UInt64(rowCount))
    // The rows in one block written through a raw pointer: appending each 4-byte field to the
    // array cost about 50 instructions a float, which made writing a large table slow.
    let rowBytes = 8 + rowStride * 4
    let rows = [UInt8](unsafeUninitializedCapacity: rowCount * rowBytes) { buffer, initialized in
      guard let base = buffer.baseAddress else { initialized = 0; return }
      let raw = UnsafeMutableRawPointer(base)
      for r in 0..<rowCount {
        let q = raw + r * rowBytes
        q.storeBytes(of: UInt64(bitPattern: id(ofRow: r)).littleEndian, as: UInt64.self)
        let p = rowPointer(r)
        for j in 0..<rowStride { q.storeBytes(of: p[j].bitPattern.littleEndian, toByteOffset: 8 + 4 * j, as: UInt32.self) }
      }
      initialized = rowCount * rowBytes
    }
    out.append(contentsOf: rows)
    let crc = out[start...].withUnsafeBytes { CRC32C.checksum($0) }
    appendLE(&out, crc)
  }

  /// The checkpoint as a new byte array.
  public func checkpoint() -> [UInt8] {
    var out: [UInt8] = []
    write(to: &out)
    return out
  }

  /// Restores a table from a checkpoint written by `write(to:)`.
  ///
  /// - Parameter optimizer: must have the layout the checkpoint was written with; its
  ///   hyperparameters may differ.
  /// - Throws: `CTRError.corruptCheckpoint` (bad magic, truncation, checksum mismatch, duplicate
  ///   ids, trailing bytes) or `.incompatibleCheckpoint` (version, optimizer layout), with the
  ///   byte offset.
  /// - Parameter directIdLimit: as in `init(dimension:...)`; a lookup setting, not table state.
  public convenience init(checkpoint bytes: [UInt8], optimizer: any RowOptimizer, directIdLimit: Int64 = 0) throws(CTRError) {
    var reader = CheckpointReader(bytes: bytes)
    let magic = try reader.bytes(8)
    guard magic == EmbeddingTable.checkpointMagic else {
      throw CTRError(.corruptCheckpoint, "EmbeddingTable", offset: 0, "not an embedding-table checkpoint (bad magic)")
    }
    guard bytes.count >= 12 else { throw reader.truncated() }
    // Check the CRC before trusting any length field.
    let body = bytes.count - 4
    let stored = bytes[body...].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    let actual = bytes[..<body].withUnsafeBytes { CRC32C.checksum($0) }
    guard stored == actual else {
      throw CTRError(.corruptCheckpoint, "EmbeddingTable", offset: body,
                     "checksum mismatch (stored \(stored), computed \(actual)): the file is damaged or truncated")
    }
    reader.end = body
    let version: UInt32 = try reader.integer()
    guard version == EmbeddingTable.checkpointVersion else {
      throw CTRError(.incompatibleCheckpoint, "EmbeddingTable", offset: 8,
                     "checkpoint version \(version), this build reads version \(EmbeddingTable.checkpointVersion)")
    }
    let dimension = Int(try reader.integer() as UInt32)
    let stateWidth = Int(try reader.integer() as UInt32)
    let layoutOffset = reader.offset
    let layoutLength = Int(try reader.integer() as UInt32)
    let layout = String(decoding: try reader.bytes(layoutLength), as: UTF8.self)
    guard dimension > 0 else {
      throw CTRError(.corruptCheckpoint, "EmbeddingTable", offset: 12, "dimension is 0")
    }
    guard layout == optimizer.stateLayout && stateWidth == optimizer.stateWidth(dimension: dimension) else {
      throw CTRError(.incompatibleCheckpoint, "EmbeddingTable", offset: layoutOffset,
                     "checkpoint holds optimizer state \(layout) (\(stateWidth) floats per row), "
                       + "the given optimizer uses \(optimizer.stateLayout) (\(optimizer.stateWidth(dimension: dimension)))")
    }
    let seed: UInt64 = try reader.integer()
    let kindOffset = reader.offset
    let kind = try reader.bytes(1)[0]
    let parameter = Float(bitPattern: try reader.integer())
    guard let initializer = EmbeddingInitializer(kind: kind, parameter: parameter) else {
      throw CTRError(.corruptCheckpoint, "EmbeddingTable", offset: kindOffset, "unknown initializer kind \(kind)")
    }
    let rowsOffset = reader.offset
    let rows: UInt64 = try reader.integer()
    let stride = dimension + stateWidth
    let rowBytes = 8 + stride * 4
    guard rows <= UInt64(reader.end - reader.offset) / UInt64(rowBytes),
          Int(rows) * rowBytes == reader.end - reader.offset else {
      throw CTRError(.corruptCheckpoint, "EmbeddingTable", offset: rowsOffset,
                     "\(rows) rows of \(rowBytes) bytes do not fit the \(reader.end - reader.offset) bytes that follow")
    }
    self.init(dimension: dimension, optimizer: optimizer, initializer: initializer, seed: seed,
              expectedRows: Int(rows), directIdLimit: directIdLimit)
    for _ in 0..<Int(rows) {
      let idOffset = reader.offset
      let id = Int64(bitPattern: try reader.integer())
      guard find(id) == nil else {
        throw CTRError(.corruptCheckpoint, "EmbeddingTable", offset: idOffset, "id \(id) appears twice")
      }
      try reader.floats(into: rowPointer(createRow(id, initialize: false)), count: stride)
    }
    recountZeroedRows()
  }

  /// Recomputes `zeroedRows` after weights were written directly.
  func recountZeroedRows() {
    var zeroed = 0
    for r in 0..<rowCount where BLAS.isAllZero(count: dimension, x: rowPointer(r)) { zeroed += 1 }
    zeroedRows = zeroed
  }
}

@inline(__always)
private func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
  withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
}

/// Reads little-endian fields from a checkpoint, throwing with the offset when it runs out.
private struct CheckpointReader {
  let bytes: [UInt8]
  var offset = 0
  var end: Int

  init(bytes: [UInt8]) {
    self.bytes = bytes
    end = bytes.count
  }

  func truncated() -> CTRError {
    CTRError(.corruptCheckpoint, "EmbeddingTable", offset: offset, "truncated: the checkpoint ends early")
  }

  mutating func bytes(_ n: Int) throws(CTRError) -> [UInt8] {
    guard n >= 0, end - offset >= n else { throw truncated() }
    defer { offset += n }
    return Array(bytes[offset..<offset + n])
  }

  mutating func floats(into p: UnsafeMutablePointer<Float>, count n: Int) throws(CTRError) {
    guard end - offset >= 4 * n else { throw truncated() }
    bytes.withUnsafeBytes { raw in
      for j in 0..<n {
        p[j] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * j, as: UInt32.self)))
      }
    }
    offset += 4 * n
  }

  mutating func integer<T: FixedWidthInteger>() throws(CTRError) -> T {
    let n = MemoryLayout<T>.size
    guard end - offset >= n else { throw truncated() }
    let v = bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    offset += n
    return v
  }
}

extension EmbeddingTable {
  /// Replaces every row with `other`'s (same dimension and layout): how a model built from its
  /// experiment takes on a checkpoint's state while keeping its own lookup settings.
  public func replaceContents(with other: EmbeddingTable) throws(CTRError) {
    guard other.dimension == dimension, other.stateWidth == stateWidth,
          other.optimizer.stateLayout == optimizer.stateLayout else {
      throw CTRError(.incompatibleCheckpoint, "EmbeddingTable", "dimension or optimizer state layout differs")
    }
    precondition(rowCount == 0, "replaceContents needs an empty table")
    other.forEachRow { id, _ in
      let src = other.rowPointer(other.rowIndex(of: id)!)
      let dst = rowPointer(createRow(id, initialize: false))
      dst.update(from: src, count: rowStride)
    }
    recountZeroedRows()
  }
}
