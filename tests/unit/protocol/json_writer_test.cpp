#include "protocol/json_writer.hpp"

#include <gtest/gtest.h>

#include "protocol/envelope.hpp"
#include "protocol/json_reader.hpp"

namespace zena::protocol {
namespace {

TEST(JsonWriter, EscapesQuotesBackslashesAndControls) {
    std::string out;
    append_json_string(out, std::string_view("a\"b\\c\n\x01\x1f", 8));
    EXPECT_EQ(out, R"("a\"b\\c\n\u0001\u001f")");
}

TEST(JsonWriter, Utf8_PassesThrough) {
    std::string out;
    append_json_string(out, "ünï ✓ 🏠");
    EXPECT_EQ(out, "\"ünï ✓ 🏠\"");
}

TEST(JsonWriter, Object_BuildsValidJson) {
    const auto text =
        json_object().add("s", "x\"y").add("n", std::int64_t{-3}).add("b", true).add_raw("r", "[1]").str();
    EXPECT_EQ(text, R"({"s":"x\"y","n":-3,"b":true,"r":[1]})");
    simdjson::dom::element e;
    EXPECT_EQ(thread_json_parser().parse(text).get(e), simdjson::SUCCESS);
}

TEST(Envelope, Frame_IsTheSeedShape) {
    EXPECT_EQ(make_event_frame("deal.risk", R"({"dealId":"d"})")->payload(),
              R"({"type":"deal.risk","payload":{"dealId":"d"}})");
}

}  // namespace
}  // namespace zena::protocol
