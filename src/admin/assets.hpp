#pragma once
// The page's files (web/), compiled into the binary by web/embed.cmake: nothing is read from
// disk at run time, and the page is the one built with the binary.

#include <span>
#include <string_view>

namespace zena::admin {

struct asset {
    std::string_view path;          // the URL path it is served at ("/", "/admin/app.js")
    std::string_view content_type;  // with its charset
    std::string_view bytes;
};

// Every embedded file (generated: build/generated/admin_assets.cpp).
std::span<const asset> assets();

// The file served at `path`, or null.
inline const asset* find_asset(std::string_view path) {
    for (const auto& a : assets()) {
        if (a.path == path) return &a;
    }
    return nullptr;
}

}  // namespace zena::admin
