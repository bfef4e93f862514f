#include "protocol/outbound.hpp"

#include <functional>
#include <string>

namespace zena::protocol {

std::string_view to_string(delivery_class cls) {
    switch (cls) {
        case delivery_class::ordered: return "ordered";
        case delivery_class::latest: return "latest";
        case delivery_class::ephemeral: return "ephemeral";
    }
    return "ordered";
}

std::uint64_t latest_key_of(std::string_view type, std::string_view key_value) {
    std::string joined;
    joined.reserve(type.size() + key_value.size() + 1);
    joined.append(type).append(1, '\0').append(key_value);
    return std::hash<std::string>{}(joined);
}

}  // namespace zena::protocol
