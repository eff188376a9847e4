#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CISAL
import CZlib

/// Which deflate implementation writes gzip/zlib streams.
public enum DeflateEngine: String, CaseIterable, Sendable, Codable {
  /// Intel ISA-L's igzip, levels 0–3: several times faster than zlib at a slightly lower ratio.
  case isal
  /// zlib, levels 0–9 (6 is zlib's and TensorFlow's default).
  case zlib

  /// The levels the engine accepts.
  public var levels: ClosedRange<Int32> { self == .isal ? 0...3 : 0...9 }

  /// The level used when none is given.
  public var defaultLevel: Int32 { self == .isal ? 1 : 6 }
}

/// ISA-L needs a scratch buffer whose size depends on the level (the `ISAL_DEF_LVLx_DEFAULT`
/// macros of igzip_lib.h, which Swift cannot import because they are expressions). These are
/// their values for libisal 2.30; a larger buffer is always accepted, a smaller one is not.
func isalLevelBufferSize(_ level: Int32) -> Int {
  switch level {
  case 0: return 0
  case 1: return 282_624
  case 2: return 331_776
  default: return 348_160
  }
}

private func isalMessage(_ rc: Int32) -> String {
  switch rc {
  case INVALID_FLUSH: return "invalid flush"
  case ISAL_INVALID_LEVEL: return "invalid compression level"
  case ISAL_INVALID_LEVEL_BUF: return "the level buffer is too small for the compression level"
  default: return "error code \(rc)"
  }
}

/// Deflates into a gzip (RFC 1952) or zlib (RFC 1950) stream with ISA-L, as `DeflateSink` does
/// with zlib; the output reads back through zlib, ISA-L and `gzip -dc` alike.
public final class IsalDeflateSink: ByteSink {
  let inner: ByteSink
  let stream: UnsafeMutablePointer<isal_zstream>
  let levelBuffer: UnsafeMutableRawBufferPointer?
  let output: UnsafeMutableRawBufferPointer
  private var done = false

  /// - Parameter level: ISA-L level 0–3 (1 is the default: see `DeflateEngine.defaultLevel`).
  public init(_ inner: ByteSink, gzip: Bool, level: Int32 = DeflateEngine.isal.defaultLevel) throws {
    guard DeflateEngine.isal.levels.contains(level) else {
      throw RecordsError(.invalidInput, path: "<isal deflate>", "ISA-L compression level \(level) is outside 0...3")
    }
    self.inner = inner
    stream = .allocate(capacity: 1)
    isal_deflate_init(stream)
    let size = isalLevelBufferSize(level)
    levelBuffer = size > 0 ? .allocate(byteCount: size, alignment: 64) : nil
    stream.pointee.level = UInt32(level)
    stream.pointee.level_buf = levelBuffer?.baseAddress?.assumingMemoryBound(to: UInt8.self)
    stream.pointee.level_buf_size = UInt32(size)
    stream.pointee.gzip_flag = UInt16(gzip ? IGZIP_GZIP : IGZIP_ZLIB)
    output = .allocate(byteCount: 256 << 10, alignment: 64)
  }

  deinit {
    stream.deallocate()
    levelBuffer?.deallocate()
    output.deallocate()
  }

  private func run(finishing: Bool) throws {
    let s = stream
    s.pointee.end_of_stream = finishing ? 1 : 0
    repeat {
      s.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
      s.pointee.avail_out = UInt32(output.count)
      let rc = isal_deflate(s)
      if rc != COMP_OK { throw RecordsError(.io, path: "<isal deflate>", "isal_deflate failed: \(isalMessage(rc))") }
      let n = output.count - Int(s.pointee.avail_out)
      if n > 0 { try inner.write(UnsafeRawBufferPointer(rebasing: output[0..<n])) }
      // Without end_of_stream ISA-L returns once the input is consumed (it keeps what it has not
      // yet emitted); with it, it returns when the output is full or the stream has ended.
    } while finishing ? s.pointee.internal_state.state != ZSTATE_END : (s.pointee.avail_in > 0 || s.pointee.avail_out == 0)
  }

  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    guard bytes.count > 0 else { return }
    var offset = 0
    // avail_in is 32-bit: feed huge buffers in pieces.
    while offset < bytes.count {
      let n = min(bytes.count - offset, 1 << 30)
      stream.pointee.next_in = UnsafeMutablePointer(mutating: (bytes.baseAddress! + offset).assumingMemoryBound(to: UInt8.self))
      stream.pointee.avail_in = UInt32(n)
      try run(finishing: false)
      offset += n
    }
  }

  public func finish() throws {
    guard !done else { return }
    done = true
    stream.pointee.avail_in = 0
    do { try run(finishing: true) } catch { inner.abandon(); throw error }
    try inner.finish()
  }

  public func abandon() { done = true; inner.abandon() }
}

/// Compresses independent pieces of one deflate stream ("segments", as pigz does): each ends
/// with a full flush, so it depends on no earlier byte, and segments compressed on different
/// threads can be concatenated in order. `DeflateSegmentAssembler` wraps the concatenation in a
/// gzip or zlib header and trailer. Not thread-safe: one per thread.
public final class DeflateSegmentCompressor {
  public let engine: DeflateEngine
  public let level: Int32
  private var isal: UnsafeMutablePointer<isal_zstream>?
  private var levelBuffer: UnsafeMutableRawBufferPointer?
  private var zlib: UnsafeMutablePointer<z_stream>?

  public init(engine: DeflateEngine, level: Int32? = nil) throws {
    self.engine = engine
    let level = level ?? engine.defaultLevel
    guard engine.levels.contains(level) else {
      throw RecordsError(.invalidInput, path: "<deflate>",
                         "\(engine.rawValue) compression level \(level) is outside \(engine.levels.lowerBound)...\(engine.levels.upperBound)")
    }
    self.level = level
    switch engine {
    case .isal:
      let s = UnsafeMutablePointer<isal_zstream>.allocate(capacity: 1)
      isal = s
      let size = isalLevelBufferSize(level)
      levelBuffer = size > 0 ? .allocate(byteCount: size, alignment: 64) : nil
    case .zlib:
      let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
      z.initialize(to: z_stream())
      zlib = z
      // Raw deflate (negative window bits): the wrapper is written once per file by the assembler.
      let rc = deflateInit2_(z, level, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
      if rc != Z_OK { throw RecordsError(.io, path: "<deflate>", "deflateInit failed with code \(rc)") }
    }
  }

  deinit {
    if let isal { isal.deallocate() }
    levelBuffer?.deallocate()
    if let zlib { deflateEnd(zlib); zlib.deallocate() }
  }

  /// The most bytes a segment of `count` input bytes can take (stored blocks plus flush markers).
  public static func bound(_ count: Int) -> Int { count + count / 1000 + 5 * (count / 16384 + 1) + 64 }

  /// Compresses `input` into `output` as one segment (a byte-aligned run of non-final deflate
  /// blocks) and returns its length; `output` must hold `bound(input.count)` bytes.
  public func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
    let capacity = output.count
    precondition(capacity >= Self.bound(input.count), "segment output buffer too small")
    let inputBase = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) }
    let out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
    switch engine {
    case .isal:
      let s = isal!
      isal_deflate_init(s)
      s.pointee.level = UInt32(level)
      s.pointee.level_buf = levelBuffer?.baseAddress?.assumingMemoryBound(to: UInt8.self)
      s.pointee.level_buf_size = UInt32(levelBuffer?.count ?? 0)
      s.pointee.gzip_flag = UInt16(IGZIP_DEFLATE)
      s.pointee.flush = UInt16(FULL_FLUSH)
      s.pointee.end_of_stream = 0
      s.pointee.next_in = inputBase
      s.pointee.avail_in = UInt32(input.count)
      s.pointee.next_out = out
      s.pointee.avail_out = UInt32(capacity)
      let rc = isal_deflate(s)
      if rc != COMP_OK { throw RecordsError(.io, path: "<isal deflate>", "isal_deflate failed: \(isalMessage(rc))") }
      // Room left in the output means the flush completed (igzip_lib.h's own criterion).
      if s.pointee.avail_in != 0 || s.pointee.avail_out == 0 {
        throw RecordsError(.io, path: "<isal deflate>", "isal_deflate did not flush a \(input.count)-byte segment")
      }
      return capacity - Int(s.pointee.avail_out)
    case .zlib:
      let z = zlib!
      deflateReset(z)
      z.pointee.next_in = inputBase
      z.pointee.avail_in = uInt(input.count)
      z.pointee.next_out = out
      z.pointee.avail_out = uInt(capacity)
      let rc = deflate(z, Z_FULL_FLUSH)
      if rc != Z_OK || z.pointee.avail_in != 0 || z.pointee.avail_out == 0 {
        throw RecordsError(.io, path: "<deflate>", "deflate did not flush a \(input.count)-byte segment (code \(rc))")
      }
      return capacity - Int(z.pointee.avail_out)
    }
  }

  /// Appends the compressed segment of `input` to `output`; returns its length.
  @discardableResult
  public func compress(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) throws -> Int {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bound(input.count), alignment: 64)
    defer { scratch.deallocate() }
    let n = try compress(input, into: scratch)
    output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<n]))
    return n
  }
}

/// The gzip or zlib wrapper around concatenated deflate segments, with the checksums a trailer
/// needs combined from per-segment checksums (so each segment is checksummed on its own thread).
public enum DeflateSegmentAssembler {
  /// A gzip header with no name and mtime 0 (so equal content gives equal files), or a zlib
  /// header announcing a 32 KiB window.
  public static func header(gzip: Bool) -> [UInt8] {
    gzip ? [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03] : [0x78, 0x01]
  }

  /// An empty final fixed-Huffman block: ends the deflate stream after the last segment.
  public static let finalBlock: [UInt8] = [0x03, 0x00]

  /// CRC-32 (gzip's checksum) of uncompressed bytes.
  public static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
    zlibChecksum(CZlib.crc32, bytes, crc)
  }

  /// Adler-32 (zlib's checksum) of uncompressed bytes; 1 starts a new checksum.
  public static func adler32(_ bytes: UnsafeRawBufferPointer, continuing adler: UInt32 = 1) -> UInt32 {
    zlibChecksum(CZlib.adler32, bytes, adler)
  }

  /// Runs a zlib checksum over `bytes` in pieces of at most 1 GiB (its length is a 32-bit uInt).
  private static func zlibChecksum(_ update: (uLong, UnsafePointer<Bytef>?, uInt) -> uLong,
                                   _ bytes: UnsafeRawBufferPointer, _ start: UInt32) -> UInt32 {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return start }
    var c = uLong(start)
    var p = base.assumingMemoryBound(to: Bytef.self)
    var left = bytes.count
    while left > 0 {
      let n = min(left, 1 << 30)
      c = update(c, p, uInt(n))
      p += n
      left -= n
    }
    return UInt32(c)
  }

  /// The checksum of A followed by B, from the checksums of each and B's length.
  public static func combine(gzip: Bool, _ a: UInt32, _ b: UInt32, lengthOfB: UInt64) -> UInt32 {
    gzip ? UInt32(crc32_combine(uLong(a), uLong(b), off_t(lengthOfB)))
      : UInt32(adler32_combine(uLong(a), uLong(b), off_t(lengthOfB)))
  }

  /// The final block and trailer: CRC-32 and length mod 2^32 (gzip, little-endian) or Adler-32
  /// (zlib, big-endian).
  public static func trailer(gzip: Bool, checksum: UInt32, length: UInt64) -> [UInt8] {
    var t = finalBlock
    if gzip {
      for i in 0..<4 { t.append(UInt8(truncatingIfNeeded: checksum >> (8 * i))) }
      for i in 0..<4 { t.append(UInt8(truncatingIfNeeded: UInt32(truncatingIfNeeded: length) >> (8 * i))) }
    } else {
      for i in (0..<4).reversed() { t.append(UInt8(truncatingIfNeeded: checksum >> (8 * i))) }
    }
    return t
  }
}
