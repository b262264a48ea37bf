import BerthSupport

/// Why part of an advisory was not accepted.
public struct OSVValidationProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

extension OSVRecord {
    /// Checks what decoding cannot: a non-empty id, an RFC 3339 `modified`, usable ranges.
    ///
    /// Problems that make the whole record unusable are thrown; a range that is malformed on its own
    /// (no events, or a GIT event that is not a full commit hash) is removed and reported in the result,
    /// so that the record's other, valid ranges still match.
    mutating func validate() throws(OSVValidationProblem) -> [OSVValidationProblem] {
        guard !id.isEmpty else { throw OSVValidationProblem(description: "empty id") }
        guard UTCTimestamp.parseRFC3339(modified) != nil else {
            throw OSVValidationProblem(description: "modified '\(modified)' is not an RFC 3339 date-time")
        }
        var dropped: [OSVValidationProblem] = []
        for a in affected.indices {
            guard !affected[a].package.name.isEmpty, !affected[a].package.ecosystem.isEmpty else {
                throw OSVValidationProblem(description: "affected[\(a)] has an empty package name or ecosystem")
            }
            var kept: [OSVRange] = []
            for (r, range) in affected[a].ranges.enumerated() {
                if let problem = range.problem {
                    dropped.append(OSVValidationProblem(
                        description: "affected[\(a)] (\(affected[a].package.name)) range \(r) dropped: \(problem)"
                    ))
                } else {
                    kept.append(range)
                }
            }
            affected[a].ranges = kept
        }
        return dropped
    }
}

extension OSVRange {
    /// What makes this range unusable, or `nil` when it is well-formed.
    var problem: String? {
        guard !events.isEmpty else { return "no events" }
        if type == .git {
            for event in events where !(event.version == "0" && isIntroduced(event)) {
                if !Self.isFullCommitHash(event.version) {
                    return "GIT event '\(event.version)' is not a full commit hash"
                }
            }
        }
        return nil
    }

    private func isIntroduced(_ event: OSVEvent) -> Bool {
        if case .introduced = event { return true }
        return false
    }

    private static func isFullCommitHash(_ s: String) -> Bool {
        (s.utf8.count == 40 || s.utf8.count == 64) && s.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
        }
    }
}
