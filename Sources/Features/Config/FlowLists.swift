import Yams

/// The long scalar lists of a fitted config (a column's `vocabulary`, `frequencies` and
/// `boundaries`), read straight from the text instead of through libyaml.
///
/// Composing a YAML node per element made loading the 9.5 MB fitted config of 2M synthetic
/// Criteo rows take about 1 s, and loading a model directory (whose `experiment.yaml` inlines it)
/// about 2 s, before `ctrkit train`, `eval` or a server could start; the time grows with the
/// vocabulary. `extract` reads the lists in the form `ctrkit analyze` writes them (a flow list of
/// double-quoted strings or of numbers, after its key at the start of a line) and leaves
/// everything else to libyaml. Each list it read is replaced in the text by an empty flow list
/// that keeps the list's line breaks and its `]` at the same column, so every other node keeps
/// its line and column. (Blanking the items to spaces kept them too, but libyaml then scanned
/// 9.5 MB of spaces: about 0.7G instructions, 0.2 s of every start.) Anything outside that form
/// (plain or single-quoted items, comments, escapes JSON does not use, a trailing comma) stays in
/// the text, to be read and, if wrong, reported as before. `ConfigDocument` then checks that each
/// list it took was a column's list in the composed document, and otherwise composes the original
/// text.
struct FlowLists {
  /// What a list holds, by its key: the values the node-by-node reading would produce.
  enum Values: Equatable {
    case strings([String])
    case integers([Int])
    case numbers([Float])
  }

  /// Where a list's `[` is, as libyaml reports it (1-based line, 1-based column).
  struct Position: Hashable {
    var line: Int
    var column: Int
  }

  /// The lists read, by the position of their `[`.
  var lists: [Position: Values] = [:]

  /// The items a key holds: double-quoted strings, or plain integers or numbers.
  enum Kind { case strings, integers, numbers }

  static let keys: [(name: [UInt8], kind: Kind)] = [
    (Array("vocabulary".utf8), .strings), (Array("frequencies".utf8), .integers), (Array("boundaries".utf8), .numbers),
  ]

  /// The text with the lists it could read replaced, and those lists; nil when there were none,
  /// or when the text has line breaks other than `\n` / `\r\n` or a byte-order mark (which make
  /// libyaml's line and column differ from the ones counted here).
  static func extract(_ text: String) -> (slim: String, lists: FlowLists)? {
    let bytes = Array(text.utf8)
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { return nil }
    // libyaml also breaks lines at a lone CR, NEL (C2 85), LS and PS (E2 80 A8/A9).
    for i in bytes.indices {
      switch bytes[i] {
      case 0x0D: if i + 1 == bytes.count || bytes[i + 1] != 0x0A { return nil }
      case 0xC2: if i + 1 < bytes.count && bytes[i + 1] == 0x85 { return nil }
      case 0xE2: if i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9) { return nil }
      default: break
      }
    }
    var found = FlowLists()
    let n = bytes.count
    // The text with each list read replaced; `copied` is how much of `bytes` it holds so far.
    var slim: [UInt8] = []
    var copied = 0
    var line = 1, lineStart = 0
    var i = 0
    while i < n {
      // At the start of a line: indentation, any "- " of sequence items, then the key.
      var p = lineStart
      while p < n && bytes[p] == 0x20 { p += 1 }
      while p + 1 < n && bytes[p] == 0x2D && bytes[p + 1] == 0x20 {
        p += 2
        while p < n && bytes[p] == 0x20 { p += 1 }
      }
      if let (kind, open) = listStart(bytes, p), let (values, close) = readList(bytes, open, kind) {
        found.lists[Position(line: line, column: open - lineStart + 1)] = values
        // `[`, the list's line breaks (CR LF or LF), spaces up to the `]`'s column, `]`.
        if slim.isEmpty { slim.reserveCapacity(n / 4) }
        slim.append(contentsOf: bytes[copied...open])
        var padFrom = open + 1
        for j in open + 1..<close where bytes[j] == 0x0A {
          if bytes[j - 1] == 0x0D { slim.append(0x0D) }
          slim.append(0x0A)
          line += 1
          lineStart = j + 1
          padFrom = j + 1
        }
        slim.append(contentsOf: repeatElement(0x20, count: close - padFrom))
        slim.append(0x5D)
        copied = close + 1
        i = close + 1
      } else {
        i = p
      }
      // On to the next line.
      while i < n && bytes[i] != 0x0A { i += 1 }
      if i < n {
        i += 1
        line += 1
        lineStart = i
      }
    }
    if found.lists.isEmpty { return nil }
    slim.append(contentsOf: bytes[copied...])
    return (String(decoding: slim, as: UTF8.self), found)
  }

  /// After a key this reads (plain or double-quoted), `:` and spaces: the index of the `[`.
  private static func listStart(_ b: [UInt8], _ start: Int) -> (Kind, Int)? {
    let quoted = start < b.count && b[start] == 0x22
    let keyStart = quoted ? start + 1 : start
    for (name, kind) in keys where b.count - keyStart > name.count && b[keyStart..<keyStart + name.count].elementsEqual(name) {
      var p = keyStart + name.count
      if quoted {
        guard p < b.count && b[p] == 0x22 else { return nil }
        p += 1
      }
      while p < b.count && b[p] == 0x20 { p += 1 }
      guard p < b.count && b[p] == 0x3A else { return nil }
      p += 1
      let colon = p
      while p < b.count && b[p] == 0x20 { p += 1 }
      guard p > colon && p < b.count && b[p] == 0x5B else { return nil }
      return (kind, p)
    }
    return nil
  }

  /// The list whose `[` is at `open`, and the index of its `]`; nil for anything outside the
  /// form described above.
  private static func readList(_ b: [UInt8], _ open: Int, _ kind: Kind) -> (Values, Int)? {
    var strings: [String] = [], integers: [Int] = [], numbers: [Float] = []
    var scratch: [UInt8] = []
    var p = open + 1
    func skipSpace() { while p < b.count && (b[p] == 0x20 || b[p] == 0x0A || b[p] == 0x0D) { p += 1 } }
    skipSpace()
    // Items until the `]` (none when it comes first).
    while !(p < b.count && b[p] == 0x5D) {
      switch kind {
      case .strings:
        guard let (s, next) = quotedString(b, p, &scratch) else { return nil }
        strings.append(s)
        p = next
      case .integers, .numbers:
        let tokenStart = p
        while p < b.count, case let c = b[p], (c >= 0x30 && c <= 0x39) || c == 0x2B || c == 0x2D || c == 0x2E || c == 0x45 || c == 0x65 {
          p += 1
        }
        let token = String(decoding: b[tokenStart..<p], as: UTF8.self)
        if kind == .integers {
          guard let v = Int(token) else { return nil }
          integers.append(v)
        } else {
          guard let v = Float(token) else { return nil }
          numbers.append(v)
        }
      }
      skipSpace()
      guard p < b.count else { return nil }
      if b[p] == 0x5D { break }
      guard b[p] == 0x2C else { return nil }
      p += 1
      skipSpace()
      // A trailing comma is valid YAML; libyaml reads it, not this.
      guard p < b.count && b[p] != 0x5D else { return nil }
    }
    switch kind {
    case .strings: return (.strings(strings), p)
    case .integers: return (.integers(integers), p)
    case .numbers: return (.numbers(numbers), p)
    }
  }

  /// A double-quoted scalar at `start` with JSON's escapes, and the index after its closing
  /// quote; nil for another escape, a raw control or line-break character, or anything libyaml
  /// would read differently. `scratch` holds the bytes of a string with escapes.
  private static func quotedString(_ b: [UInt8], _ start: Int, _ scratch: inout [UInt8]) -> (String, Int)? {
    guard start < b.count && b[start] == 0x22 else { return nil }
    var p = start + 1
    var escaped = false
    while p < b.count {
      let c = b[p]
      if c == 0x22 {
        let s = escaped ? String(decoding: scratch, as: UTF8.self) : String(decoding: b[(start + 1)..<p], as: UTF8.self)
        return (s, p + 1)
      }
      if c == 0x5C {
        if !escaped {
          escaped = true
          scratch.removeAll(keepingCapacity: true)
          scratch.append(contentsOf: b[(start + 1)..<p])
        }
        guard p + 1 < b.count else { return nil }
        let e = b[p + 1]
        p += 2
        switch e {
        case 0x22, 0x5C, 0x2F: scratch.append(e)
        case 0x62: scratch.append(0x08)
        case 0x66: scratch.append(0x0C)
        case 0x6E: scratch.append(0x0A)
        case 0x72: scratch.append(0x0D)
        case 0x74: scratch.append(0x09)
        case 0x75:
          // (Surrogates are not scalars: libyaml rejects them too.)
          guard p + 4 <= b.count, let v = UInt32(String(decoding: b[p..<(p + 4)], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(v) else { return nil }
          scratch.append(contentsOf: String(Character(scalar)).utf8)
          p += 4
        default: return nil
        }
        continue
      }
      var width = 1
      if c < 0x80 {
        // Raw tab, line break and other controls: libyaml folds or rejects them.
        guard c >= 0x20 && c != 0x7F else { return nil }
      } else {
        // A UTF-8 sequence (the text is valid UTF-8): only the characters libyaml reads as
        // printable and not as a line break.
        width = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2
        guard p + width <= b.count else { return nil }
        var v = UInt32(c) & (width == 2 ? 0x1F : width == 3 ? 0x0F : 0x07)
        for j in 1..<width { v = v << 6 | UInt32(b[p + j] & 0x3F) }
        let printable = (v >= 0xA0 && v <= 0xD7FF && v != 0x2028 && v != 0x2029)
          || (v >= 0xE000 && v <= 0xFFFD && v != 0xFEFF) || v >= 0x10000
        guard printable else { return nil }
      }
      if escaped { scratch.append(contentsOf: b[p..<(p + width)]) }
      p += width
    }
    return nil
  }

  /// Whether every list read is, in the document composed from the slim text, the value of its
  /// key in an item of the `columns` list of the document (a feature config) or of its
  /// `features` (an experiment), where `FeatureConfig` reads it. If not (a list inside a block
  /// scalar, or under some other key), the caller composes the original text instead.
  func allClaimed(by root: Node) -> Bool {
    var claimed = 0
    for config in [root, root.mapping?["features"]] {
      guard let columns = config?.mapping?["columns"]?.sequence else { continue }
      for column in columns {
        guard let m = column.mapping else { continue }
        for (k, v) in m {
          guard let key = k.string, FlowLists.keys.contains(where: { $0.name.elementsEqual(key.utf8) }),
                let s = v.sequence, s.isEmpty, let mark = s.mark,
                lists[Position(line: mark.line, column: mark.column)] != nil else { continue }
          claimed += 1
        }
      }
    }
    return claimed == lists.count
  }
}
