#include "protocol/client_message.hpp"

#include <gtest/gtest.h>

#include "protocol/catalog.hpp"
#include "protocol/shipped_catalog.hpp"

namespace zena::protocol {
namespace {

const catalog& shipped() { return testing::shipped_catalog(); }

client_message parse(std::string_view text) { return parse_client_message(text, shipped()); }

TEST(ClientMessage, SeedEvents_Parse) {
    auto m = parse(R"({"type":"sync.request","payload":{}})");
    EXPECT_EQ(m.error, client_error::none);
    ASSERT_NE(m.spec, nullptr);
    EXPECT_EQ(m.spec->type, "sync.request");
    m = parse(R"({"type":"thread.view","payload":{"threadId":"thread-123"}})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.type, "thread.view");
    EXPECT_EQ(m.payload_json, R"({"threadId":"thread-123"})");
    m = parse(R"({"type":"typing.start","payload":{}})");
    EXPECT_EQ(m.spec->delivery, ws::delivery_class::ephemeral);
}

TEST(ClientMessage, ExtraTopLevelFields_AreAllowed) {
    const auto m = parse(R"({"type":"thread.view","payload":{"threadId":"t"},"id":7})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.payload_json, R"({"threadId":"t"})");
}

TEST(ClientMessage, MissingPayload_ReadsAsEmptyObject) {
    const auto m = parse(R"({"type":"typing.start"})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.payload_json, "{}");
}

TEST(ClientMessage, Refusals) {
    EXPECT_EQ(parse("{nope").error, client_error::invalid_json);
    EXPECT_EQ(parse("").error, client_error::invalid_json);
    EXPECT_EQ(parse("\"\xff\"").error, client_error::invalid_json) << "UTF-8 is checked";
    EXPECT_EQ(parse("[1]").error, client_error::not_an_object);
    EXPECT_EQ(parse("{}").error, client_error::missing_type);
    EXPECT_EQ(parse(R"({"type":""})").error, client_error::missing_type);
    EXPECT_EQ(parse(R"({"type":["x"]})").error, client_error::missing_type);
    const auto unknown = parse(R"({"type":"deal.risk","payload":{}})");
    EXPECT_EQ(unknown.error, client_error::unknown_type) << "a server event is not a client event";
    EXPECT_EQ(unknown.type, "deal.risk");
}

TEST(ClientMessage, BadPayloads_NameTheField) {
    auto m = parse(R"({"type":"thread.view","payload":{}})");
    EXPECT_EQ(m.error, client_error::bad_payload);
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse(R"({"type":"thread.view"})");
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse(R"({"type":"thread.view","payload":{"threadId":7}})");
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse(R"({"type":"thread.view","payload":{"threadId":"t","extra":1}})");
    EXPECT_EQ(m.field, "payload.extra");
    m = parse(R"({"type":"sync.request","payload":"x"})");
    EXPECT_EQ(m.field, "payload");
}

TEST(ClientMessage, LongType_IsTruncatedForLogs) {
    const auto m = parse(R"({"type":")" + std::string(5000, 'a') + R"("})");
    EXPECT_EQ(m.error, client_error::unknown_type);
    EXPECT_EQ(m.type.size(), k_max_logged_type_bytes);
}

}  // namespace
}  // namespace zena::protocol
