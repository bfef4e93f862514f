#include "upstream/routes.hpp"

#include <algorithm>

#include "util/text.hpp"

namespace zena::upstream {

using util::for_each_item;
using util::trim;

routes routes::to_all(unsigned destinations) {
    routes r;
    r.fallback_ = destinations;
    return r;
}

std::optional<routes> routes::parse(std::string_view spec, std::string& error) {
    routes out;
    if (trim(spec).empty()) return out;
    bool has_fallback = false;
    const bool ok = for_each_item(spec, ',', [&](std::string_view item) {
        const auto eq = item.find('=');
        if (eq == std::string_view::npos) {
            error = "'" + std::string{item} + "' is not <event type>=<destinations>";
            return false;
        }
        const auto type = trim(item.substr(0, eq));
        if (type.empty()) {
            error = "'" + std::string{item} + "' names no event type";
            return false;
        }
        unsigned mask = 0;
        const bool names_ok = for_each_item(item.substr(eq + 1), '+', [&](std::string_view name) {
            if (name == "webhook") {
                mask |= k_to_webhook;
            } else if (name == "redis") {
                mask |= k_to_redis;
            } else if (name != "none") {
                error = "unknown destination '" + std::string{name} + "' for " + std::string{type} +
                        " (webhook, redis or none)";
                return false;
            }
            return true;
        });
        if (!names_ok) return false;
        const bool seen = type == "*" ? has_fallback
                                      : std::any_of(out.by_type_.begin(), out.by_type_.end(),
                                                    [&](const auto& route) { return route.first == type; });
        if (seen) {
            error = std::string{type} + " is routed twice";
            return false;
        }
        if (type == "*") {
            has_fallback = true;
            out.fallback_ = mask;
        } else {
            out.by_type_.emplace_back(type, mask);
        }
        return true;
    });
    if (!ok) return std::nullopt;
    return out;
}

unsigned routes::of(std::string_view type) const {
    for (const auto& [name, mask] : by_type_) {
        if (name == type) return mask;
    }
    return fallback_;
}

unsigned routes::used() const {
    unsigned mask = fallback_;
    for (const auto& route : by_type_) mask |= route.second;
    return mask;
}

std::vector<std::string> routes::named_types() const {
    std::vector<std::string> out;
    out.reserve(by_type_.size());
    for (const auto& route : by_type_) out.push_back(route.first);
    return out;
}

}  // namespace zena::upstream
