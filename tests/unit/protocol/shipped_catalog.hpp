#pragma once
// The catalog compiled into the binary (catalog/events.json), parsed once for the tests.

#include <gtest/gtest.h>

#include "protocol/catalog.hpp"

namespace zena::protocol::testing {

inline const catalog& shipped_catalog() {
    static const catalog c = [] {
        std::string error;
        auto parsed = catalog::parse(builtin_catalog_json(), error);
        EXPECT_TRUE(parsed) << error;
        return *parsed;
    }();
    return c;
}

}  // namespace zena::protocol::testing
