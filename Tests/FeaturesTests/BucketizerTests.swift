import Features
import Foundation
import Records
import TestSupport
import XCTest

/// bucketized_column / the Bucketize kernel against TensorFlow.
final class BucketizerTests: XCTestCase {
  static func goldenBucketizer() throws -> (Bucketizer, JSONValue) {
    let golden = try Fixture.json("bucketized.json")
    let boundaries = try golden.required("boundaries") { $0.array?.compactMap(\.double) }
    return (try Bucketizer(boundaries: boundaries.map { Float($0) }), golden)
  }

  func testGoldenBoundariesAreStoredAsTheirFloat32Bits() throws {
    let (bucketizer, golden) = try Self.goldenBucketizer()
    let bits = try golden.required("boundaries_as_float32_bits") { $0.array?.compactMap(\.string) }
    XCTAssertEqual(bucketizer.boundaries.map(hexBits), bits)
    XCTAssertEqual(bucketizer.bucketCount, 8)
  }

  func testFloat32InputsAroundEachBoundaryMatchTensorFlow() throws {
    // One ULP either side of every boundary, NaN, ±inf, -0.0, ±denormals and ±1e30.
    let (bucketizer, golden) = try Self.goldenBucketizer()
    let rows = try golden.required("float32_inputs") { $0.array }
    XCTAssertEqual(rows.count, 36)
    for row in rows {
      let v = try row.required("bits") { $0.float32FromBits }
      XCTAssertEqual(bucketizer.bucket(v), Int(try row.required("bucket") { $0.int64 }), "float32 \(v) (\(hexBits(v)))")
    }
  }

  func testFloat64InputsCompareAgainstTheWidenedFloat32Boundaries() throws {
    // Among them: 0.1 lands below Float(0.1) = 0.10000000149..., and -1e-45 is a normal double
    // that stays below 0.
    let (bucketizer, golden) = try Self.goldenBucketizer()
    let rows = try golden.required("float64_inputs_raw_Bucketize") { $0.array }
    XCTAssertEqual(rows.count, 36)
    for row in rows {
      let v = try row.required("v") { $0.double }
      XCTAssertEqual(bucketizer.bucket(v), Int(try row.required("bucket") { $0.int64 }), "float64 \(v)")
    }
    XCTAssertEqual(bucketizer.bucket(0.1 as Double), 2)
    XCTAssertEqual(bucketizer.bucket(Double(Float(0.1))), 3)
  }

  func testInt64InputsMatchTensorFlowIncludingTheUnrepresentableBoundary() throws {
    // 16777217.0 is not a float32; the stored boundary is 16777216, so 16777216 and 16777217
    // both reach the last bucket.
    let (bucketizer, golden) = try Self.goldenBucketizer()
    let rows = try golden.required("int64_inputs_raw_Bucketize") { $0.array }
    XCTAssertEqual(rows.count, 13)
    for row in rows {
      let v = try row.required("v") { $0.int64 }
      XCTAssertEqual(bucketizer.bucket(v), Int(try row.required("bucket") { $0.int64 }), "int64 \(v)")
    }
  }

  func testNaNGoesToTheLastBucketAndNegativeZeroToZerosBucket() throws {
    let (bucketizer, _) = try Self.goldenBucketizer()
    XCTAssertEqual(bucketizer.bucket(Float.nan), bucketizer.bucketCount - 1)
    XCTAssertEqual(bucketizer.bucket(-Float.nan), bucketizer.bucketCount - 1)
    XCTAssertEqual(bucketizer.bucket(Double.nan), bucketizer.bucketCount - 1)
    XCTAssertEqual(bucketizer.bucket(-0.0 as Float), bucketizer.bucket(0.0 as Float))
    XCTAssertEqual(bucketizer.bucket(-0.0 as Double), bucketizer.bucket(0.0 as Double))
  }

  func testMultiDimensionalSourceOffsetsEachElementByTheBucketCount() throws {
    let golden = try Fixture.json("bucketized.json").required("multi_dim") { $0 }
    XCTAssertEqual(golden["column"]?.string, "bucketized_column(numeric_column('v2', shape=(2,)), [0,1])")
    let bucketizer = try Bucketizer(boundaries: [0, 1])
    let input = try golden.required("input") { $0.array?.map { $0.array?.compactMap(\.double) ?? [] } }
    var ids: [Int64] = []
    var indices: [[Int64]] = []
    for (row, values) in input.enumerated() {
      for (j, v) in values.enumerated() {
        // A numeric column is float32, so the value is bucketized as float32.
        ids.append(bucketizer.sparseID(bucket: bucketizer.bucket(Float(v)), dimension: j))
        indices.append([Int64(row), Int64(j)])
      }
    }
    XCTAssertEqual(ids, try golden.required("sparse_ids") { $0.array?.compactMap(\.int64) })
    XCTAssertEqual(indices, try golden.required("indices") { $0.array?.map { $0.array?.compactMap(\.int64) ?? [] } })
  }

  func testInt64InputIsConvertedToFloat32BeforeComparing() throws {
    // Not in the golden file; derived from the kernel, whose `int64 < float` comparison
    // converts the int64 to float32 (round to nearest even). 16777219 rounds to 16777220, so it
    // reaches the boundary 16777220; compared exactly it would stay below.
    let bucketizer = try Bucketizer(boundaries: [16_777_220])
    XCTAssertEqual(Float(16_777_219 as Int64), 16_777_220)
    XCTAssertEqual(bucketizer.bucket(16_777_219 as Int64), 1)
    XCTAssertEqual(bucketizer.bucket(16_777_219 as Double), 0)
  }

  func testSubnormalsCompareAsZeroLikeTensorFlowsFlushedKernels() throws {
    // The golden float32 -1e-45 (bits 80000001) lands in 0.0's bucket; a subnormal boundary is
    // flushed the same way, so 0 reaches it.
    let (bucketizer, _) = try Self.goldenBucketizer()
    XCTAssertEqual(bucketizer.bucket(-Float.leastNonzeroMagnitude), bucketizer.bucket(0 as Float))
    XCTAssertEqual(bucketizer.bucket(-Double.leastNonzeroMagnitude), bucketizer.bucket(0 as Double))
    let tiny = try Bucketizer(boundaries: [Float.leastNonzeroMagnitude, 1])
    XCTAssertEqual(tiny.bucket(0 as Float), 1)
    XCTAssertEqual(tiny.bucket(0 as Double), 1)
    XCTAssertEqual(tiny.bucket(0 as Int64), 1)
    XCTAssertEqual(tiny.boundaries, [Float.leastNonzeroMagnitude, 1], "the boundaries are kept as given")
  }

  /// The branch-free search against its definition (how many boundaries the input is not below),
  /// for every list length from 1 to 40: inputs on, between and around the boundaries, ±inf, NaN.
  func testTheSearchCountsTheBoundariesAtOrBelowTheInputForEveryListLength() throws {
    var rng = SplitMix64(seed: 11)
    for count in 1...40 {
      var values = Set<Float>()
      while values.count < count { values.insert(Float(Int(rng.next() % 2001) - 1000) / 8) }
      let boundaries = values.sorted()
      let bucketizer = try Bucketizer(boundaries: boundaries)
      var inputs: [Float] = [-.infinity, .infinity, .nan, -1e30, 1e30]
      for b in boundaries { inputs += [b, b.nextDown, b.nextUp] }
      for _ in 0..<50 { inputs.append(Float(Int(rng.next() % 2201) - 1100) / 8) }
      for x in inputs {
        let expected = boundaries.filter { !(x < $0) }.count
        XCTAssertEqual(bucketizer.bucket(x), expected, "\(count) boundaries, input \(x)")
        XCTAssertEqual(bucketizer.bucket(Double(x)), expected, "\(count) boundaries, float64 input \(x)")
        if abs(x) < 1e6 && x == x.rounded() {
          XCTAssertEqual(bucketizer.bucket(Int64(x)), expected, "\(count) boundaries, int64 input \(x)")
        }
      }
    }
  }

  func testBoundariesMustBeNonEmptyStrictlyAscendingAndNotNaN() {
    func message(_ boundaries: [Float]) -> String? {
      do {
        _ = try Bucketizer(boundaries: boundaries)
        return nil
      } catch let error as TFCompatError {
        XCTAssertEqual(error.kind, .invalidBoundaries)
        return error.description
      } catch {
        XCTFail("unexpected error \(error)")
        return nil
      }
    }
    XCTAssertEqual(message([]), "invalid boundaries: boundaries must not be empty")
    XCTAssertEqual(message([0, 2, 1]),
                   "invalid boundaries: boundaries must be strictly ascending: boundary 1 is 2.0 and boundary 2 is 1.0")
    XCTAssertNotNil(message([1, 1]), "bucketized_column rejects repeated boundaries")
    XCTAssertEqual(message([0, .nan]), "invalid boundaries: boundary 1 is NaN")
    XCTAssertNil(message([-.infinity, 0, .infinity]))
  }

  func testCodableRoundTripsAndDecodingValidates() throws {
    let original = try Bucketizer(boundaries: [-10, 0, 0.1, 2.5])
    let data = try JSONEncoder().encode(original)
    XCTAssertEqual(try JSONDecoder().decode(Bucketizer.self, from: data), original)
    XCTAssertThrowsError(try JSONDecoder().decode(Bucketizer.self, from: Data(#"{"boundaries":[1,0]}"#.utf8))) {
      XCTAssertEqual(($0 as? TFCompatError)?.kind, .invalidBoundaries)
    }
  }

  func testDiscretizationLayerFollowsTheSameUpperBoundRule() throws {
    let golden = try Fixture.json("keras_preprocessing.json")
    let key = "Discretization(bin_boundaries=[0.,1.,2.])([-1,0,0.5,1,2,3])"
    let expected = try golden.required("results") { $0[key]?.array?.compactMap(\.int64) }
    let bucketizer = try Bucketizer(boundaries: [0, 1, 2])
    XCTAssertEqual([-1, 0, 0.5, 1, 2, 3].map { Int64(bucketizer.bucket(Float($0))) }, expected)
  }
}
