#include "ws/outbound.hpp"

namespace zena::ws {

std::string_view to_string(delivery_class cls) {
    switch (cls) {
        case delivery_class::ordered: return "ordered";
        case delivery_class::latest: return "latest";
        case delivery_class::ephemeral: return "ephemeral";
    }
    return "ordered";
}

}  // namespace zena::ws
