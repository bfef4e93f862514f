#include "protocol/client_message.hpp"

#include <gtest/gtest.h>

namespace zena::protocol {
namespace {

TEST(ClientMessage, SeedEvents_Parse) {
    auto m = parse_client_message(R"({"type":"sync.request","payload":{}})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.event, client_event::sync_request);
    m = parse_client_message(R"({"type":"thread.view","payload":{"threadId":"thread-123"}})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.event, client_event::thread_view);
    EXPECT_EQ(m.payload_json, R"({"threadId":"thread-123"})");
    m = parse_client_message(R"({"type":"typing.start","payload":{}})");
    EXPECT_EQ(m.event, client_event::typing_start);
}

TEST(ClientMessage, ExtraFields_AreKept) {
    const auto m = parse_client_message(R"({"type":"thread.view","payload":{"threadId":"t","x":1},"id":7})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.payload_json, R"({"threadId":"t","x":1})");
}

TEST(ClientMessage, MissingPayload_ReadsAsEmptyObject) {
    const auto m = parse_client_message(R"({"type":"typing.start"})");
    EXPECT_EQ(m.error, client_error::none);
    EXPECT_EQ(m.payload_json, "{}");
}

TEST(ClientMessage, Refusals) {
    EXPECT_EQ(parse_client_message("{nope").error, client_error::invalid_json);
    EXPECT_EQ(parse_client_message("").error, client_error::invalid_json);
    EXPECT_EQ(parse_client_message("\"\xff\"").error, client_error::invalid_json) << "UTF-8 is checked";
    EXPECT_EQ(parse_client_message("[1]").error, client_error::not_an_object);
    EXPECT_EQ(parse_client_message("{}").error, client_error::missing_type);
    EXPECT_EQ(parse_client_message(R"({"type":""})").error, client_error::missing_type);
    EXPECT_EQ(parse_client_message(R"({"type":["x"]})").error, client_error::missing_type);
    const auto unknown = parse_client_message(R"({"type":"deal.risk","payload":{}})");
    EXPECT_EQ(unknown.error, client_error::unknown_type);
    EXPECT_EQ(unknown.type, "deal.risk");
}

TEST(ClientMessage, BadPayloads_NameTheField) {
    auto m = parse_client_message(R"({"type":"thread.view","payload":{}})");
    EXPECT_EQ(m.error, client_error::bad_payload);
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse_client_message(R"({"type":"thread.view"})");
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse_client_message(R"({"type":"thread.view","payload":{"threadId":""}})");
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse_client_message(R"({"type":"thread.view","payload":{"threadId":")" + std::string(300, 'x') + R"("}})");
    EXPECT_EQ(m.field, "payload.threadId");
    m = parse_client_message(R"({"type":"sync.request","payload":"x"})");
    EXPECT_EQ(m.field, "payload");
}

TEST(ClientMessage, LongType_IsTruncatedForLogs) {
    const auto m = parse_client_message(R"({"type":")" + std::string(5000, 'a') + R"("})");
    EXPECT_EQ(m.error, client_error::unknown_type);
    EXPECT_EQ(m.type.size(), k_max_client_id_bytes);
}

}  // namespace
}  // namespace zena::protocol
