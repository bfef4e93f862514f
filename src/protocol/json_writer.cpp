#include "protocol/json_writer.hpp"

namespace zena::protocol {

void append_json_string(std::string& out, std::string_view value) {
    static constexpr char k_hex[] = "0123456789abcdef";
    out.reserve(out.size() + value.size() + 2);
    out += '"';
    for (const char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += k_hex[c >> 4];
                    out += k_hex[c & 0xF];
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
}

void json_object::key(std::string_view k) {
    if (out_.size() > 1) out_ += ',';
    append_json_string(out_, k);
    out_ += ':';
}

json_object& json_object::add(std::string_view k, std::string_view value) {
    key(k);
    append_json_string(out_, value);
    return *this;
}

json_object& json_object::add(std::string_view k, std::int64_t value) {
    key(k);
    out_ += std::to_string(value);
    return *this;
}

json_object& json_object::add(std::string_view k, std::uint64_t value) {
    key(k);
    out_ += std::to_string(value);
    return *this;
}

json_object& json_object::add(std::string_view k, bool value) {
    key(k);
    out_ += value ? "true" : "false";
    return *this;
}

json_object& json_object::add_raw(std::string_view k, std::string_view json) {
    key(k);
    out_ += json;
    return *this;
}

}  // namespace zena::protocol
