/// One record handed out by `TFRecordReader.next()`: its payload is valid until the next call.
public struct TFRecord {
  /// The payload bytes (a serialized proto for Example files).
  public let data: UnsafeRawBufferPointer
  /// 0-based index of the record in its file, counting skipped records.
  public let index: Int
  /// Offset of the record's 12-byte header in the uncompressed stream.
  public let offset: UInt64
}

/// What `--skip-corrupt` left out of a file, so nothing is dropped silently.
public struct SkipReport: Sendable, Equatable {
  /// One stretch of skipped bytes.
  public struct Event: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    /// Offset in the uncompressed stream where the skipped stretch starts.
    public var offset: UInt64
    public var bytes: UInt64
    /// Records known to be lost (a resynchronisation can hide more than one).
    public var records: Int
    /// Index the first lost record had.
    public var recordIndex: Int
    public var reason: String

    public var description: String {
      "\(path): skipped \(bytes) bytes (\(records) record\(records == 1 ? "" : "s")) at byte offset \(offset), record \(recordIndex): \(reason)"
    }
  }

  public var events: [Event] = []
  public var records: Int { events.reduce(0) { $0 + $1.records } }
  public var bytes: UInt64 { events.reduce(0) { $0 + $1.bytes } }
  public init() {}
}

/// How strictly a reader treats bad input.
public struct ReaderOptions: Sendable {
  /// Check the CRC32C of every payload (the length CRC is always checked: framing depends on it).
  public var verifyChecksums = true
  /// Skip bad records and resynchronise on the next valid header instead of failing.
  public var skipCorrupt = false
  /// Lengths above this are treated as corrupt rather than allocated.
  public var maxRecordLength = 1 << 31
  /// Bytes requested from the source per read. 1 MiB keeps the buffer in a core's L2 cache, so
  /// the payload CRC and the copy into chunks read what `read` or inflate just wrote (the framing
  /// pass ran 22 % faster than with 4 MiB, median of 10 alternated pairs).
  public var readSize = 1 << 20
  public init(verifyChecksums: Bool = true, skipCorrupt: Bool = false) {
    self.verifyChecksums = verifyChecksums
    self.skipCorrupt = skipCorrupt
  }
}

/// Reads TFRecord framing (length, masked CRC32C of the length, payload, masked CRC32C of the
/// payload) from a file, streaming with a buffer no larger than the largest record plus one read.
///
/// Unlike TensorFlow it reports a file cut inside a record header and trailing bytes after the
/// last record, instead of ignoring them; with `skipCorrupt` it resynchronises after a corrupt
/// length, which TensorFlow cannot.
public final class TFRecordReader {
  public let path: String
  public let compression: Compression
  public let options: ReaderOptions
  public private(set) var skipped = SkipReport()
  let source: ByteSource
  private let file: FileSource?
  /// Size of an uncompressed regular file (lets the reader reject impossible lengths early).
  private let fileSize: UInt64?

  private var buf: UnsafeMutableRawPointer
  private var cap: Int
  private var lo = 0, hi = 0
  private var loOffset: UInt64 = 0  // stream offset of buf[lo]
  private var sourceDone = false
  private var sourceError: Error?
  /// Index of the next record.
  public private(set) var nextIndex = 0

  public init(path: String, compression: Compression = .auto, options: ReaderOptions = ReaderOptions(),
              inflater: Inflater = .default) throws {
    self.path = path
    self.options = options
    let (source, resolved, file) = try openByteSource(path: path, compression: compression, inflater: inflater)
    self.source = source
    self.compression = resolved
    self.file = file
    fileSize = resolved == .none ? file.size : nil
    cap = max(options.readSize, 64 << 10)
    buf = .allocate(byteCount: cap, alignment: 64)
  }

  /// Reads from an arbitrary byte source (tests, standard input, memory).
  public init(source: ByteSource, path: String, options: ReaderOptions = ReaderOptions()) {
    self.path = path
    self.options = options
    self.source = source
    compression = .none
    file = nil
    fileSize = nil
    cap = max(options.readSize, 64 << 10)
    buf = .allocate(byteCount: cap, alignment: 64)
  }

  deinit { buf.deallocate() }

  /// Bytes of the file on disk consumed so far (compressed bytes for compressed files).
  public var fileOffset: UInt64 { source.fileOffset }

  /// The file's size on disk, when it is a regular file.
  public var diskSize: UInt64? { file?.size }

  /// Offset in the uncompressed stream of the next unread byte.
  public var streamOffset: UInt64 { loOffset }

  /// Makes at least `n` bytes available from `lo`; false if the stream ends first.
  private func ensure(_ n: Int) throws -> Bool {
    if hi - lo >= n { return true }
    if sourceDone {
      if let sourceError, !options.skipCorrupt { throw sourceError }
      return false
    }
    if lo + n > cap {
      if n > cap {
        let newCap = max(n, cap * 2)
        let nb = UnsafeMutableRawPointer.allocate(byteCount: newCap, alignment: 64)
        nb.copyMemory(from: buf + lo, byteCount: hi - lo)
        buf.deallocate()
        buf = nb
        cap = newCap
      } else {
        (buf).copyMemory(from: buf + lo, byteCount: hi - lo)  // ranges may overlap: memmove semantics
      }
      hi -= lo
      lo = 0
    }
    while hi - lo < n {
      let got: Int
      do {
        got = try source.read(into: UnsafeMutableRawBufferPointer(start: buf + hi, count: cap - hi))
      } catch var e as RecordsError {
        // Bytes already buffered are still handed out (each record is CRC-checked); the error
        // surfaces where the missing bytes are needed, naming that record.
        e.record = nextIndex
        e.offset = loOffset
        sourceDone = true
        sourceError = e
        if options.skipCorrupt { return false }
        throw e
      }
      if got == 0 { sourceDone = true; return false }
      hi += got
    }
    return true
  }

  private func consume(_ n: Int) {
    lo += n
    loOffset += UInt64(n)
  }

  @inline(__always)
  private func load32(_ at: Int) -> UInt32 { (buf + at).loadUnaligned(as: UInt32.self).littleEndian }

  /// The next record, or nil at the end of the file.
  public func next() throws -> TFRecord? {
    while true {
      if try !ensure(12) {
        let left = hi - lo
        if options.skipCorrupt && sourceError != nil { return skipRestAfterSourceError() }
        if left == 0 { return nil }
        let reason = "the file ends \(left) byte\(left == 1 ? "" : "s") into a record header (truncated file or trailing garbage; TensorFlow ignores this silently)"
        if options.skipCorrupt {
          skip(bytes: UInt64(left), records: 1, reason: reason)
          consume(left)
          continue
        }
        throw RecordsError(.trailingBytes, path: path, record: nextIndex, offset: loOffset, reason)
      }
      let header = buf + lo
      let length = header.loadUnaligned(as: UInt64.self).littleEndian
      let lengthOK = CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(start: header, count: 8))) == load32(lo + 8)
      if !lengthOK || length > UInt64(options.maxRecordLength) {
        var reason = lengthOK ? "record length \(length) exceeds the limit of \(options.maxRecordLength) bytes"
          : "the length checksum does not match (corrupt length or not a record boundary)"
        if nextIndex == 0 && loOffset == 0 && !lengthOK {
          reason += "; is this a TFRecord file? (compressed files are detected from their magic bytes, or pass --compression)"
        }
        if options.skipCorrupt { try resynchronise(reason: reason); continue }
        throw RecordsError(.corruptLength, path: path, record: nextIndex, offset: loOffset, reason)
      }
      let total = 12 + Int(length) + 4
      if let fileSize, loOffset + UInt64(total) > fileSize {
        let reason = "truncated record: its length is \(length) bytes but the file ends \(fileSize - loOffset - 12) bytes after its header"
        if options.skipCorrupt {
          _ = try ensure(hi - lo + 1)  // drain to the end
          skip(bytes: UInt64(hi - lo), records: 1, reason: reason)
          consume(hi - lo)
          continue
        }
        throw RecordsError(.truncated, path: path, record: nextIndex, offset: loOffset, reason)
      }
      if try !ensure(total) {
        if options.skipCorrupt && sourceError != nil { return skipRestAfterSourceError() }
        let have = hi - lo
        let reason = "truncated record: its length is \(length) bytes but the stream ends \(have - 12) bytes after its header"
        if options.skipCorrupt {
          skip(bytes: UInt64(have), records: 1, reason: reason)
          consume(have)
          continue
        }
        throw RecordsError(.truncated, path: path, record: nextIndex, offset: loOffset, reason)
      }
      let payload = UnsafeRawBufferPointer(start: buf + lo + 12, count: Int(length))
      if options.verifyChecksums {
        let crc = CRC32C.mask(CRC32C.checksum(payload))
        if crc != load32(lo + 12 + Int(length)) {
          let reason = "the data checksum does not match (payload of \(length) bytes at offset \(loOffset + 12) is corrupt)"
          if options.skipCorrupt {
            skip(bytes: UInt64(total), records: 1, reason: reason)
            consume(total)
            nextIndex += 1
            continue
          }
          throw RecordsError(.corruptData, path: path, record: nextIndex, offset: loOffset, reason)
        }
      }
      let record = TFRecord(data: payload, index: nextIndex, offset: loOffset)
      consume(total)
      nextIndex += 1
      return record
    }
  }

  /// With `skipCorrupt`, a decompression error ends the stream: what is buffered but incomplete
  /// is counted as lost, and the error is kept in the report rather than dropped.
  private func skipRestAfterSourceError() -> TFRecord? {
    let left = hi - lo
    let message = (sourceError as? RecordsError)?.message ?? "\(sourceError!)"
    sourceError = nil
    skip(bytes: UInt64(left), records: left > 0 ? 1 : 0,
         reason: left > 0 ? "\(message); the rest of the stream is unreadable"
           : "\(message) (after the last complete record; the records read passed their checksums)")
    consume(left)
    return nil
  }

  private func skip(bytes: UInt64, records: Int, reason: String) {
    skipped.events.append(.init(path: path, offset: loOffset, bytes: bytes, records: records,
                                recordIndex: nextIndex, reason: reason))
  }

  /// Scans forward byte by byte for the next position whose header CRC and payload CRC both
  /// check, so a corrupt length costs only the records it overlaps.
  private func resynchronise(reason: String) throws {
    let start = loOffset
    let startIndex = nextIndex
    consume(1)
    while true {
      if try !ensure(12) {
        let rest = hi - lo
        consume(rest)
        skipped.events.append(.init(path: path, offset: start, bytes: loOffset - start, records: 1,
                                    recordIndex: startIndex, reason: reason + "; no valid record follows"))
        nextIndex += 1
        return
      }
      let header = buf + lo
      let length = header.loadUnaligned(as: UInt64.self).littleEndian
      if CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(start: header, count: 8))) == load32(lo + 8),
         length <= UInt64(options.maxRecordLength),
         fileSize.map({ loOffset + 16 + length <= $0 }) ?? true,
         try ensure(16 + Int(length)) {
        let payload = UnsafeRawBufferPointer(start: buf + lo + 12, count: Int(length))
        if CRC32C.mask(CRC32C.checksum(payload)) == load32(lo + 12 + Int(length)) {
          skipped.events.append(.init(path: path, offset: start, bytes: loOffset - start, records: 1,
                                      recordIndex: startIndex, reason: reason + "; resynchronised at byte offset \(loOffset)"))
          nextIndex += 1
          return
        }
      }
      consume(1)
    }
  }

  /// Calls `body` with every remaining record.
  public func forEach(_ body: (TFRecord) throws -> Void) throws {
    while let r = try next() { try body(r) }
  }

  /// Appends up to `maxRecords` payloads (and at most about `maxBytes`) to `chunk`; returns
  /// false when the file had no more records.
  public func fill(_ chunk: RecordChunk, maxRecords: Int, maxBytes: Int = 64 << 20) throws -> Bool {
    chunk.path = path
    var added = 0
    while added < maxRecords && chunk.byteCount < maxBytes, let r = try next() {
      chunk.append(r)
      added += 1
    }
    return added > 0
  }
}

/// A batch of record payloads copied into one contiguous arena, handed between threads.
public final class RecordChunk: @unchecked Sendable {
  public internal(set) var count = 0
  public var path = ""
  /// Sequence number in the stream of chunks (restores order after parallel parsing).
  public var sequence = 0
  private var arena: UnsafeMutableRawPointer
  private var arenaCap: Int
  public private(set) var byteCount = 0
  private var starts: [Int] = [0]
  /// Record index in its file, and header offset in the uncompressed stream, per record.
  public private(set) var indices: [Int] = []
  public private(set) var offsets: [UInt64] = []

  public init(capacity: Int = 1 << 20) {
    arenaCap = max(capacity, 64)
    arena = .allocate(byteCount: arenaCap, alignment: 64)
    starts.reserveCapacity(1025)
    indices.reserveCapacity(1024)
    offsets.reserveCapacity(1024)
  }

  deinit { arena.deallocate() }

  public func removeAll() {
    count = 0
    byteCount = 0
    starts.removeAll(keepingCapacity: true)
    starts.append(0)
    indices.removeAll(keepingCapacity: true)
    offsets.removeAll(keepingCapacity: true)
  }

  /// Copies a record's payload in.
  public func append(_ r: TFRecord) {
    append(r.data, index: r.index, offset: r.offset)
  }

  public func append(_ data: UnsafeRawBufferPointer, index: Int, offset: UInt64) {
    let need = byteCount + data.count
    if need > arenaCap {
      let newCap = max(need, arenaCap * 2)
      let nb = UnsafeMutableRawPointer.allocate(byteCount: newCap, alignment: 64)
      nb.copyMemory(from: arena, byteCount: byteCount)
      arena.deallocate()
      arena = nb
      arenaCap = newCap
    }
    if data.count > 0 { (arena + byteCount).copyMemory(from: data.baseAddress!, byteCount: data.count) }
    byteCount = need
    starts.append(need)
    indices.append(index)
    offsets.append(offset)
    count += 1
  }

  /// Calls `body` with random access to the payloads and their file indices and offsets.
  public func withRecords<R>(_ body: (Records, UnsafeBufferPointer<Int>, UnsafeBufferPointer<UInt64>) throws -> R) rethrows -> R {
    try starts.withUnsafeBufferPointer { s in
      try indices.withUnsafeBufferPointer { idx in
        try offsets.withUnsafeBufferPointer { off in
          try body(Records(base: UnsafeRawPointer(arena), starts: s), idx, off)
        }
      }
    }
  }

  /// Payload views into a chunk's arena.
  public struct Records {
    let base: UnsafeRawPointer
    let starts: UnsafeBufferPointer<Int>
    public var count: Int { starts.count - 1 }
    @inline(__always)
    public subscript(i: Int) -> UnsafeRawBufferPointer {
      UnsafeRawBufferPointer(start: base + starts[i], count: starts[i + 1] - starts[i])
    }
  }

  /// The payload of record `i` of this chunk.
  @inlinable
  public subscript(i: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: base + start(i), count: start(i + 1) - start(i))
  }

  @usableFromInline var base: UnsafeRawPointer { UnsafeRawPointer(arena) }
  @usableFromInline func start(_ i: Int) -> Int { starts[i] }
}
