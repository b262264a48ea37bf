import BerthCore
import Foundation

/// The JSON formats of values kept in metadata rows, shared by the SQL stores (SQLite, PostgreSQL), so
/// both write and read them alike. A value that does not decode is an error (`CorruptMetadataError`), never a default.
public enum StoredValues {
    public static func encode(_ settings: RepositorySettings) throws -> String {
        String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
    }

    /// A repository's stored settings. A row that does not decode is an error, never default settings:
    /// the defaults have no repository policy, so falling back to them would drop its `Deny` statements.
    public static func decode(_ text: String, of key: RepositoryKey) throws -> RepositorySettings {
        do {
            return try JSONDecoder().decode(RepositorySettings.self, from: Data(text.utf8))
        } catch {
            throw CorruptMetadataError(what: "settings of repository \(key.registryID)/\(key.name)", detail: "\(error)")
        }
    }

    /// Lists are kept as JSON arrays of strings.
    public static func encodeList(_ list: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(list), as: UTF8.self)
    }

    /// A stored list; one that does not decode is an error (an empty list of client ids would look
    /// like a provider that accepts no audience, hiding the damage).
    public static func decodeList(_ text: String, _ what: @autoclosure () -> String) throws -> [String] {
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw CorruptMetadataError(what: what(), detail: "\(error)")
        }
    }
}
