import BerthEvents
import BerthSupport
import Foundation

/// One HTTP target of event notifications, as written in the settings (docs/events.md).
public struct EventTargetSettings: Sendable, Equatable, Codable {
    public var name: String
    public var url: String
    /// `eventbridge` (default) or `cloudevents`.
    public var format: String?
    /// An EventBridge event pattern (a JSON object); absent: every event.
    public var pattern: JSONValue?
    /// Key of the `X-Berth-Signature` HMAC-SHA256 header; absent: unsigned.
    public var secret: String?
    public var timeoutSeconds: Double?

    public init(name: String, url: String, format: String? = nil, pattern: JSONValue? = nil, secret: String? = nil,
                timeoutSeconds: Double? = nil) {
        self.name = name
        self.url = url
        self.format = format
        self.pattern = pattern
        self.secret = secret
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, url, format, pattern, secret, timeoutSeconds }

    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: BerthConfiguration.AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for k in any.allKeys where !known.contains(k.stringValue) {
            throw DecodingError.dataCorruptedError(forKey: k, in: any, debugDescription: "unknown event target setting \(k.stringValue)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        url = try c.decode(String.self, forKey: .url)
        format = try c.decodeIfPresent(String.self, forKey: .format)
        pattern = try c.decodeIfPresent(DecodedJSON.self, forKey: .pattern)?.value
        secret = try c.decodeIfPresent(String.self, forKey: .secret)
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(url, forKey: .url)
        try c.encodeIfPresent(format, forKey: .format)
        try c.encodeIfPresent(pattern.map(EncodedJSON.init), forKey: .pattern)
        try c.encodeIfPresent(secret == nil ? nil : "(hidden)", forKey: .secret)
        try c.encodeIfPresent(timeoutSeconds, forKey: .timeoutSeconds)
    }

    /// The target the delivery service uses; throws the first problem (`problems` lists them all).
    public func target() throws -> EventTarget {
        guard let f = EventBodyFormat(rawValue: format ?? "eventbridge") else {
            throw ConfigurationError(problems: ["event target \(name): format must be eventbridge or cloudevents"])
        }
        let parsed: EventPattern?
        do { parsed = try pattern.map { try EventPattern($0) } } catch {
            throw ConfigurationError(problems: ["event target \(name): \(error)"])
        }
        return EventTarget(name: name, url: url, format: f, pattern: parsed, secret: secret, timeoutSeconds: timeoutSeconds ?? 10)
    }

    func problems() -> [String] {
        var p: [String] = []
        if name.isEmpty || name.count > 64 || !name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }) {
            p.append("event target names are 1–64 letters, digits, '-', '_' and '.', got \(name)")
        }
        if !(url.hasPrefix("http://") || url.hasPrefix("https://")) { p.append("event target \(name): url must start with http:// or https://") }
        if let t = timeoutSeconds, !(0.1...300).contains(t) { p.append("event target \(name): timeoutSeconds must be between 0.1 and 300") }
        if let s = secret, s.isEmpty { p.append("event target \(name): secret must not be empty") }
        do { _ = try target() } catch let e as ConfigurationError { p += e.problems } catch { p.append("\(error)") }
        return p
    }
}

/// A JSON value written through `Encodable` (an event pattern, printed by `berth verify-config`).
struct EncodedJSON: Encodable {
    let value: JSONValue

    func encode(to encoder: any Encoder) throws {
        switch value {
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(EncodedJSON(value: item)) }
        case .object(let members):
            var c = encoder.container(keyedBy: BerthConfiguration.AnyKey.self)
            for (k, v) in members { try c.encode(EncodedJSON(value: v), forKey: BerthConfiguration.AnyKey(stringValue: k)!) }
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let t):
            var c = encoder.singleValueContainer()
            try c.encode(t)
        }
    }
}

/// A JSON value read through `Decodable` (an event pattern in the settings).
struct DecodedJSON: Decodable {
    let value: JSONValue

    init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !list.isAtEnd { items.append(try list.decode(DecodedJSON.self).value) }
            value = .array(items)
        } else if let object = try? decoder.container(keyedBy: BerthConfiguration.AnyKey.self) {
            var members: [String: JSONValue] = [:]
            for k in object.allKeys { members[k.stringValue] = try object.decode(DecodedJSON.self, forKey: k).value }
            value = .object(members)
        } else {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { value = .null }
            else if let b = try? c.decode(Bool.self) { value = .bool(b) }
            else if let i = try? c.decode(Int64.self) { value = .int(i) }
            else if let d = try? c.decode(Double.self) { value = .double(d) }
            else { value = .string(try c.decode(String.self)) }
        }
    }
}

/// The event notification settings (`eventTargets`, `eventMaxAttempts`, … / `BERTH_EVENT_*`), kept in
/// one value so the main configuration stays short.
public struct EventSettings: Sendable, Equatable, Decodable {
    /// Where events go; none (the default): events are not even written.
    public var targets: [EventTargetSettings] = []
    public var maxAttempts: Int = 12
    public var retryBaseSeconds: Double = 1
    public var retryMaxSeconds: Double = 300
    /// How often an idle delivery loop looks for events other processes wrote, in seconds.
    public var pollSeconds: Double = 1
    /// Days delivered and dead-lettered events are kept.
    public var retentionDays: Int = 7

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case eventTargets, eventMaxAttempts, eventRetryBaseSeconds, eventRetryMaxSeconds, eventPollSeconds, eventRetentionDays
    }

    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EventSettings()
        targets = try c.decodeIfPresent([EventTargetSettings].self, forKey: .eventTargets) ?? d.targets
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .eventMaxAttempts) ?? d.maxAttempts
        retryBaseSeconds = try c.decodeIfPresent(Double.self, forKey: .eventRetryBaseSeconds) ?? d.retryBaseSeconds
        retryMaxSeconds = try c.decodeIfPresent(Double.self, forKey: .eventRetryMaxSeconds) ?? d.retryMaxSeconds
        pollSeconds = try c.decodeIfPresent(Double.self, forKey: .eventPollSeconds) ?? d.pollSeconds
        retentionDays = try c.decodeIfPresent(Int.self, forKey: .eventRetentionDays) ?? d.retentionDays
    }

    /// Applies `BERTH_EVENT_*` from `env` (`BERTH_EVENT_TARGETS` is the targets' JSON array).
    mutating func apply(env: (String) -> String?, problems: inout [String]) {
        if let v = env("BERTH_EVENT_TARGETS") {
            do { targets = try JSONDecoder().decode([EventTargetSettings].self, from: Data(v.utf8)) } catch {
                problems.append("BERTH_EVENT_TARGETS must be a JSON array of targets: \(error)")
            }
        }
        func number(_ name: String, _ apply: (Double) -> Void) {
            guard let v = env(name) else { return }
            if let d = Double(v) { apply(d) } else { problems.append("\(name) must be a number, got \(v)") }
        }
        number("BERTH_EVENT_MAX_ATTEMPTS") { maxAttempts = Int($0) }
        number("BERTH_EVENT_RETRY_BASE_SECONDS") { retryBaseSeconds = $0 }
        number("BERTH_EVENT_RETRY_MAX_SECONDS") { retryMaxSeconds = $0 }
        number("BERTH_EVENT_POLL_SECONDS") { pollSeconds = $0 }
        number("BERTH_EVENT_RETENTION_DAYS") { retentionDays = Int($0) }
    }

    func problems() -> [String] {
        var p: [String] = targets.flatMap { $0.problems() }
        let names = targets.map(\.name)
        if Set(names).count != names.count { p.append("event target names must be unique") }
        if !(1...1_000).contains(maxAttempts) { p.append("eventMaxAttempts must be between 1 and 1000, got \(maxAttempts)") }
        if !(0.01...3_600).contains(retryBaseSeconds) { p.append("eventRetryBaseSeconds must be between 0.01 and 3600") }
        if !(retryBaseSeconds...86_400).contains(retryMaxSeconds) { p.append("eventRetryMaxSeconds must be between eventRetryBaseSeconds and 86400") }
        if !(0.05...3_600).contains(pollSeconds) { p.append("eventPollSeconds must be between 0.05 and 3600") }
        if !(1...3_650).contains(retentionDays) { p.append("eventRetentionDays must be between 1 and 3650") }
        return p
    }

    /// The delivery service's settings (the targets validated).
    public func delivery() throws -> EventDeliverySettings {
        EventDeliverySettings(targets: try targets.map { try $0.target() }, maxAttempts: maxAttempts,
                              retryBaseSeconds: retryBaseSeconds, retryMaxSeconds: retryMaxSeconds, pollSeconds: pollSeconds,
                              retentionSeconds: Double(retentionDays) * 86_400)
    }
}
