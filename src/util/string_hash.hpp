#pragma once
// A transparent hash for unordered containers keyed by std::string: find(std::string_view)
// without building a string.
//
// Threading: stateless.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace zena::util {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// A map from strings that is searched with string_views.
template <typename T>
using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;

}  // namespace zena::util
