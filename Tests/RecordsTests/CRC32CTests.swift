import XCTest
import CRecordsSupport
@testable import Records

final class CRC32CTests: XCTestCase {
  func testCheckValueOfTheCastagnoliPolynomial() {
    XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    XCTAssertEqual(ctr_crc32c_extend_portable(0, "123456789", 9), 0xE306_9283)
  }

  func testHardwareAndPortablePathsAgreeOnEveryLengthAndAlignment() {
    var rng = SplitMix64(seed: 7)
    let data = (0..<40_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
    data.withUnsafeBytes { b in
      // Every length up to 800 (the interleaved path starts at 96 bytes, with blocks of any
      // multiple of 8), lengths around the largest block (3 x 4096 bytes), and odd alignments.
      for len in Array(0...800) + [4095, 12287, 12288, 12289, 12311, 24577, 39_000] {
        for off in 0..<9 {
          let slice = UnsafeRawBufferPointer(rebasing: b[off..<(off + len)])
          XCTAssertEqual(ctr_crc32c_extend(5, slice.baseAddress!, len), ctr_crc32c_extend_portable(5, slice.baseAddress!, len),
                         "length \(len) offset \(off)")
        }
      }
    }
  }

  func testChecksumsCanBeExtendedPieceByPiece() {
    let data = Array("The quick brown fox jumps over the lazy dog".utf8)
    let whole = CRC32C.checksum(data)
    let first = CRC32C.checksum(Array(data[0..<10]))
    let both = data[10...].withUnsafeBytes { CRC32C.checksum($0, continuing: first) }
    XCTAssertEqual(both, whole)
  }

  func testMaskMatchesTensorFlowAndUnmaskInvertsIt() {
    XCTAssertEqual(CRC32C.mask(0), 0xa282_ead8)
    for v: UInt32 in [0, 1, 0xdead_beef, 0xffff_ffff, 0x8000_0000] {
      XCTAssertEqual(CRC32C.unmask(CRC32C.mask(v)), v)
    }
  }

  func testFrameChecksumsOfTensorFlowWrittenRecordsMatchTheGoldenSidecar() throws {
    let expected = try Fixture.jsonLines("examples.expected.jsonl")
    let file = try Fixture.data("examples_none.tfrecord")
    for record in expected {
      let frame = record["frame"]!
      let offset = frame["offset"]!.intValue!, length = frame["length"]!.intValue!
      let payload = Array(file[(offset + 12)..<(offset + 12 + length)])
      let crc = CRC32C.checksum(payload)
      XCTAssertEqual(crc, UInt32(frame["crc32c_data"]!.stringValue!, radix: 16), "raw CRC of record at \(offset)")
      XCTAssertEqual(CRC32C.mask(crc), UInt32(frame["masked_crc_data"]!.stringValue!, radix: 16))
      let lengthBytes = Array(file[offset..<(offset + 8)])
      XCTAssertEqual(CRC32C.mask(CRC32C.checksum(lengthBytes)), UInt32(frame["masked_crc_len"]!.stringValue!, radix: 16))
    }
  }
}
