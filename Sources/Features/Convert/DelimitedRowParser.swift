#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Records

/// Splits one CSV/TSV record into fields and types them into a `TypedRow`.
///
/// Empty fields are absent features (not zero, not ""); in a quoted dialect `""` is an empty
/// string in a bytes column. List columns split at their separator and may not hold empty
/// values. A row with the wrong number of fields, an unparseable number or an empty label is
/// rejected, never repaired.
final class DelimitedRowParser {
  let layout: ConvertLayout
  let row: TypedRow
  let delimiter: UInt8
  let quote: UInt8?
  let columnCount: Int
  /// Per column: its type, or nil when dropped; and its list separator (-1: single value).
  /// Unsafe buffers, so the per-field lookups in the hot loop touch no array machinery.
  let types: UnsafeMutableBufferPointer<RawValueType?>
  let separators: UnsafeMutableBufferPointer<Int16>
  /// Per column: values that float32 stored rounded (more digits than it holds).
  var roundedFloats: [Int]

  init(layout: ConvertLayout) {
    self.layout = layout
    row = TypedRow(layout: layout)
    delimiter = layout.delimiter
    quote = layout.quote
    columnCount = layout.columns.count
    types = .allocate(capacity: max(columnCount, 1))
    _ = types.initialize(from: layout.columns.enumerated().map { layout.kept[$0.offset] ? $0.element.type : nil })
    separators = .allocate(capacity: max(columnCount, 1))
    _ = separators.initialize(from: layout.separators.map { $0.map(Int16.init) ?? -1 })
    roundedFloats = Array(repeating: 0, count: layout.columns.count)
  }

  deinit {
    types.deallocate()
    separators.deallocate()
  }

  /// Parses the record content `[start, end)` (no line feed, no trailing carriage return).
  func parse(_ p: UnsafePointer<UInt8>, start: Int, end: Int) throws(RowRejection) {
    row.reset(rowBytes: end - start)
    var fields = 0
    if let quote, memchr(p + start, Int32(quote), end - start) != nil {
      fields = try parseQuoted(p, start, end, quote)
    } else {
      var at = start
      while let next = try unquotedField(p, at, end, &fields) { at = next }
    }
    if fields != columnCount {
      throw RowRejection("expected \(columnCount) fields, found \(fields)")
    }
    if let label = layout.labelIndex, !row.isPresent(label) {
      throw RowRejection(column: layout.columns[label].name, "the label is empty")
    }
  }

  private func parseQuoted(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ quote: UInt8) throws(RowRejection) -> Int {
    var fields = 0
    var at = start
    while true {
      if at < end && p[at] == quote {
        // A quoted field: find the closing quote, unescaping doubled quotes into scratch.
        var i = at + 1
        var escaped = false
        var closing = -1
        while i < end {
          if p[i] == quote {
            if i + 1 < end && p[i + 1] == quote { escaped = true; i += 2; continue }
            closing = i
            break
          }
          i += 1
        }
        if closing < 0 { throw RowRejection("a quoted field (column \(fields + 1)) is not closed before the end of the input") }
        let after = closing + 1
        if after < end && p[after] != delimiter {
          throw RowRejection("unexpected \(ValueText.quoted(p + after, 1)) after the closing quote of column \(fields + 1)")
        }
        if fields < columnCount {
          let n = closing - (at + 1)
          if escaped {
            let dst = row.scratchSpace().assumingMemoryBound(to: UInt8.self)
            var k = 0, j = at + 1
            while j < closing {
              dst[k] = p[j]
              k += 1
              j += p[j] == quote ? 2 : 1
            }
            row.commitScratch(k)
            try store(fields, UnsafePointer(dst), k, quotedEmpty: true)
          } else {
            try store(fields, p + at + 1, n, quotedEmpty: true)
          }
        }
        fields += 1
        if after >= end { break }
        at = after + 1
      } else {
        guard let next = try unquotedField(p, at, end, &fields) else { break }
        at = next
      }
    }
    return fields
  }

  /// Stores the unquoted field that starts at `at` (up to the next delimiter) and counts it;
  /// returns where the next field starts, or nil when this was the row's last field.
  @inline(__always)
  private func unquotedField(_ p: UnsafePointer<UInt8>, _ at: Int, _ end: Int, _ fields: inout Int) throws(RowRejection) -> Int? {
    let rest = end - at
    let hit = rest > 0 ? memchr(p + at, Int32(delimiter), rest) : nil
    let fieldEnd = hit.map { UnsafePointer<UInt8>($0.assumingMemoryBound(to: UInt8.self)) - p } ?? end
    if fields < columnCount { try store(fields, p + at, fieldEnd - at, quotedEmpty: false) }
    fields += 1
    return hit == nil ? nil : fieldEnd + 1
  }

  /// Types one field into column `c`.
  @inline(__always)
  private func store(_ c: Int, _ p: UnsafePointer<UInt8>, _ n: Int, quotedEmpty: Bool) throws(RowRejection) {
    guard let type = types[c] else { return }
    let separator = separators[c]
    if n == 0 {
      // `""` in a quoted dialect: an explicit empty string (bytes only; a number cannot be empty).
      if quotedEmpty && type == .bytes && separator < 0 {
        row.begin(c, .bytes)
        row.appendBytes(c, UnsafeRawPointer(p), 0)
      }
      return
    }
    row.begin(c, type)
    if separator < 0 {
      try value(c, type, p, n)
      return
    }
    let sep = UInt8(separator)
    var at = 0
    var index = 0
    while true {
      let hit = memchr(p + at, Int32(sep), n - at)
      let e = hit.map { UnsafePointer<UInt8>($0.assumingMemoryBound(to: UInt8.self)) - p } ?? n
      if e == at {
        throw RowRejection(column: layout.columns[c].name, "empty value at position \(index + 1) of the list \(ValueText.quoted(p, n))")
      }
      try value(c, type, p + at, e - at)
      index += 1
      if hit == nil { break }
      at = e + 1
    }
  }

  @inline(__always)
  private func value(_ c: Int, _ type: RawValueType, _ p: UnsafePointer<UInt8>, _ n: Int) throws(RowRejection) {
    switch type {
    case .bytes:
      row.appendBytes(c, UnsafeRawPointer(p), n)
    case .int64:
      guard let v = ValueText.int64(p, n) else {
        throw RowRejection(column: layout.columns[c].name, "\(ValueText.quoted(p, n)) is not an int64")
      }
      row.appendInt(c, v)
    case .float:
      guard let v = ValueText.float(p, n) else {
        throw RowRejection(column: layout.columns[c].name, "\(ValueText.quoted(p, n)) is not a float32 number")
      }
      if !ValueText.float32Keeps(p, n, v) { roundedFloats[c] += 1 }
      row.appendFloat(c, v)
    }
  }
}
