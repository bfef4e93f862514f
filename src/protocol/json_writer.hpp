#pragma once
// The one place that writes JSON text by hand: string escaping and the small objects the server
// builds itself (welcome, API replies). Payloads from the backend are never re-encoded here; they
// pass through as validated, minified bytes (see envelope.hpp).

#include <cstdint>
#include <string>
#include <string_view>

namespace zena::protocol {

// Appends `value` as a JSON string literal (quotes included). Input is assumed UTF-8 (every
// string that reaches here came from a validating parser or from our own code); control
// characters, quotes and backslashes are escaped.
void append_json_string(std::string& out, std::string_view value);

// Builds one flat JSON object: json_object().add("a", "x").add("n", 3).str() == {"a":"x","n":3}
class json_object {
public:
    json_object& add(std::string_view key, std::string_view value);
    json_object& add(std::string_view key, const char* value) { return add(key, std::string_view{value}); }
    json_object& add(std::string_view key, std::int64_t value);
    json_object& add(std::string_view key, std::uint64_t value);
    json_object& add(std::string_view key, int value) { return add(key, static_cast<std::int64_t>(value)); }
    json_object& add(std::string_view key, bool value);
    // `json` must already be valid JSON text.
    json_object& add_raw(std::string_view key, std::string_view json);
    std::string str() const { return out_ + '}'; }

private:
    void key(std::string_view k);
    std::string out_ = "{";
};

}  // namespace zena::protocol
