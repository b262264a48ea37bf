import BerthCore
import BerthSupport
import Crypto
import Foundation

/// How a target receives an event's body.
public enum EventBodyFormat: String, Sendable, Codable, CaseIterable {
    /// The event exactly as EventBridge delivers it to an API destination (`Content-Type: application/json`).
    case eventbridge
    /// CloudEvents 1.0, structured mode (`Content-Type: application/cloudevents+json`).
    case cloudevents
}

/// An HTTP target of event notifications, as configured (`eventTargets`, docs/events.md).
public struct EventTarget: Sendable, Equatable {
    /// Names the target in the outbox, the CLI and the metrics; unique.
    public var name: String
    public var url: String
    public var format: EventBodyFormat
    /// The EventBridge event pattern an event must match; nil: every event.
    public var pattern: EventPattern?
    /// The HMAC-SHA256 key of the `X-Berth-Signature` header; nil: requests are not signed.
    public var secret: String?
    /// Seconds an attempt may take.
    public var timeoutSeconds: Double

    public init(name: String, url: String, format: EventBodyFormat = .eventbridge, pattern: EventPattern? = nil,
                secret: String? = nil, timeoutSeconds: Double = 10) {
        self.name = name
        self.url = url
        self.format = format
        self.pattern = pattern
        self.secret = secret
        self.timeoutSeconds = timeoutSeconds
    }

    /// Whether an event goes to this target.
    public func wants(_ event: JSONValue) -> Bool { pattern?.matches(event) ?? true }

    /// The request body for an event (its EventBridge JSON text) in this target's format.
    public func body(for eventText: String) -> [UInt8] {
        switch format {
        case .eventbridge: return Array(eventText.utf8)
        case .cloudevents: return CloudEvent.structured(fromEventBridge: eventText)
        }
    }

    public var contentType: String {
        switch format {
        case .eventbridge: return "application/json"
        case .cloudevents: return "application/cloudevents+json"
        }
    }
}

/// The signature of a delivery: `X-Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
/// under the target's secret (the timestamp is signed, so a receiver can refuse old replays).
public enum EventSignature {
    public static let header = "X-Berth-Signature"

    public static func value(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        let t = "\(timestamp)"
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))
        hmac.update(data: Array(t.utf8) + [UInt8(ascii: ".")])
        hmac.update(data: body)
        return "t=" + t + ",v1=" + hmac.finalize().hexString
    }

    /// Checks a header value against the body (what a receiver does), in constant time for the MAC.
    public static func verify(_ header: String, secret: String, body: [UInt8]) -> Bool {
        var timestamp: Int64? = nil
        var given: String? = nil
        for part in header.split(separator: ",") {
            if part.hasPrefix("t=") { timestamp = Int64(part.dropFirst(2)) }
            if part.hasPrefix("v1=") { given = String(part.dropFirst(3)) }
        }
        guard let timestamp, let given else { return false }
        let expected = Array(value(secret: secret, timestamp: timestamp, body: body).utf8)
        let actual = Array("t=\(timestamp),v1=\(given)".utf8)
        guard expected.count == actual.count else { return false }
        return zip(expected, actual).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// CloudEvents 1.0 in structured mode, made from an EventBridge event: `id`, `source` (`aws.ecr`), `type`
/// (the `detail-type`), `time`, `subject` (the `repository-name`), `datacontenttype` `application/json`,
/// `data` (the `detail`), and the extension attributes `account` and `region`.
public enum CloudEvent {
    public static func structured(fromEventBridge text: String) -> [UInt8] {
        guard case .object(let e)? = try? JSONValue.parse(Array(text.utf8)) else { return Array(text.utf8) }
        var ce: [String: JSONValue] = [
            "specversion": .string("1.0"),
            "id": e["id"] ?? .string(""),
            "source": e["source"] ?? .string(""),
            "type": e["detail-type"] ?? .string(""),
            "datacontenttype": .string("application/json"),
            "data": e["detail"] ?? .object([:]),
        ]
        if let time = e["time"] { ce["time"] = time }
        if case .object(let detail)? = e["detail"], let repository = detail["repository-name"] { ce["subject"] = repository }
        if let account = e["account"] { ce["account"] = account }
        if let region = e["region"] { ce["region"] = region }
        return JSONValue.object(ce).encoded()
    }
}
