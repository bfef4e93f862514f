#include "protocol/close_codes_json.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ws/close_codes.hpp"

namespace zena::protocol {
namespace {

TEST(CloseCodesJson, Json_ListsEveryCode) {
    const auto json = close_codes_json();
    for (const auto& info : ws::close_codes()) {
        EXPECT_NE(json.find("\"code\":" + std::to_string(static_cast<unsigned>(info.code))), std::string::npos);
        EXPECT_NE(json.find("\"name\":\"" + std::string{info.name} + "\""), std::string::npos);
    }
}

}  // namespace
}  // namespace zena::protocol
