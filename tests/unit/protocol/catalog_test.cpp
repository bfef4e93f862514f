#include "protocol/catalog.hpp"

#include <gtest/gtest.h>

#include "protocol/json_reader.hpp"

#include "protocol/shipped_catalog.hpp"

namespace zena::protocol {
namespace {

const catalog& shipped() { return testing::shipped_catalog(); }

std::optional<validation_error> validate(std::string_view type, std::string_view payload_json) {
    const auto* spec = shipped().server_event(type);
    EXPECT_NE(spec, nullptr) << type;
    simdjson::dom::element payload;
    EXPECT_EQ(thread_json_parser().parse(payload_json.data(), payload_json.size()).get(payload), simdjson::SUCCESS);
    return catalog::validate(*spec, payload);
}

TEST(Catalog, Shipped_HasTheSeedsEventsWithTheirDeliveryClasses) {
    for (const auto* type : {"sync.started", "sync.progress", "sync.completed", "thread.new", "thread.updated",
                             "deal.risk", "task.created", "ask.response", "connected"}) {
        EXPECT_NE(shipped().server_event(type), nullptr) << type;
    }
    for (const auto* type : {"sync.request", "thread.view", "typing.start"}) {
        EXPECT_NE(shipped().client_event(type), nullptr) << type;
    }
    EXPECT_EQ(shipped().server_event("sync.progress")->delivery, ws::delivery_class::latest);
    EXPECT_EQ(shipped().server_event("sync.progress")->delivery_key, "accountId");
    EXPECT_EQ(shipped().server_event("ask.response")->delivery, ws::delivery_class::ordered);
    EXPECT_EQ(shipped().client_event("typing.start")->delivery, ws::delivery_class::ephemeral);
    EXPECT_TRUE(shipped().server_event("connected")->protocol);
    EXPECT_EQ(shipped().server_event("no.such"), nullptr);
}

TEST(Catalog, SeedPayloads_Validate) {
    EXPECT_FALSE(validate("thread.new", R"({"threadId":"thread-123","accountId":"account-456"})"));
    EXPECT_FALSE(validate("deal.risk", R"({"dealId":"d","riskLevel":"high","riskFlags":["a","b"],"riskReason":"r"})"));
    EXPECT_FALSE(validate("task.created", R"({"taskId":"t","label":"l","source":"email"})"));
    EXPECT_FALSE(
        validate("task.created",
                 R"({"taskId":"t","label":"l","source":"s","dueDate":"2026-12-01T10:00:00.000Z","dealId":"d"})"));
    EXPECT_FALSE(validate("sync.completed", R"({"accountId":"a","threadsProcessed":3,"success":false,"error":"x"})"));
    EXPECT_FALSE(validate("ask.response", R"({"chunk":"Hel","isComplete":false})"));
    EXPECT_FALSE(validate("ask.response", R"({"chunk":"","isComplete":true,"streamId":"s1",
        "sources":[{"type":"thread","id":"t1","title":"Offer"}],"suggestedActions":["Reply"]})"));
}

TEST(Catalog, WrongPayloads_NameTheField) {
    const auto expect = [](std::string_view type, std::string_view json, std::string_view field) {
        const auto e = validate(type, json);
        ASSERT_TRUE(e) << json;
        EXPECT_EQ(e->field, field) << e->message;
    };
    expect("thread.new", R"({"threadId":"t"})", "payload.accountId");
    expect("thread.new", R"({"threadId":7,"accountId":"a"})", "payload.threadId");
    expect("thread.new", R"({"threadId":"t","accountId":"a","threadID":"typo"})", "payload.threadID");
    expect("deal.risk", R"({"dealId":"d","riskLevel":"low","riskFlags":[],"riskReason":"r"})", "payload.riskLevel");
    expect("deal.risk", R"({"dealId":"d","riskLevel":"high","riskFlags":["a",1],"riskReason":"r"})",
           "payload.riskFlags[1]");
    expect("sync.progress", R"({"accountId":"a","totalThreads":"10","processedThreads":1})", "payload.totalThreads");
    expect("sync.completed", R"({"accountId":"a","threadsProcessed":1,"success":"yes"})", "payload.success");
    expect("task.created", R"({"taskId":"t","label":"l","source":"s","dueDate":"next week"})", "payload.dueDate");
    expect("ask.response", R"({"chunk":"c","isComplete":true,"sources":[{"type":"thread"}]})", "payload.sources[0].id");
    expect("ask.response", R"({"chunk":"c","isComplete":true,"sources":{}})", "payload.sources");
    EXPECT_EQ(validate("ask.response", R"({"chunk":"c","isComplete":true,"sources":[{"type":"t"}]})")->message,
              "is required");
}

TEST(Catalog, Dates_AcceptIso8601Only) {
    for (const auto* ok : {"2026-12-01", "2026-12-01T10:00Z", "2026-12-01T10:00:05Z", "2026-12-01T10:00:05.123Z",
                           "2026-12-01T10:00:05+02:00", "2026-12-01T23:59:60Z"}) {
        EXPECT_FALSE(
            validate("task.created", std::string(R"({"taskId":"t","label":"l","source":"s","dueDate":")") + ok + "\"}"))
            << ok;
    }
    for (const auto* bad : {"2026-13-01", "2026-12-32", "12/01/2026", "2026-12-01T25:00Z", "2026-12-01T10:00:05.Z",
                            "2026-12-01T10:00:05+0200", "2026-12-01 10:00", ""}) {
        EXPECT_TRUE(validate("task.created",
                             std::string(R"({"taskId":"t","label":"l","source":"s","dueDate":")") + bad + "\"}"))
            << bad;
    }
}

TEST(Catalog, OwnCatalog_AddsEventTypes) {
    std::string error;
    const auto c = catalog::parse(R"({
        "types": {"Money": {"amount": "number", "currency": {"enum": ["NZD", "AUD"]}}},
        "server": {"offer.received": {"delivery": "ordered", "payload": {"offerId": "string", "price": "Money",
                   "tags": {"array": "string", "optional": true}, "meta": {"object": {"src": "string"}}}}},
        "client": {}
    })",
                                  error);
    ASSERT_TRUE(c) << error;
    const auto* spec = c->server_event("offer.received");
    ASSERT_NE(spec, nullptr);
    simdjson::dom::element ok;
    ASSERT_EQ(
        thread_json_parser()
            .parse(std::string_view(R"({"offerId":"o","price":{"amount":1,"currency":"NZD"},"meta":{"src":"x"}})"))
            .get(ok),
        simdjson::SUCCESS);
    EXPECT_FALSE(catalog::validate(*spec, ok));
    simdjson::dom::element bad;
    ASSERT_EQ(
        thread_json_parser()
            .parse(std::string_view(R"({"offerId":"o","price":{"amount":1,"currency":"USD"},"meta":{"src":"x"}})"))
            .get(bad),
        simdjson::SUCCESS);
    EXPECT_EQ(catalog::validate(*spec, bad)->field, "payload.price.currency");
}

TEST(Catalog, BadCatalogs_AreRefusedNamingThePlace) {
    const auto error_of = [](std::string_view json) {
        std::string error;
        EXPECT_FALSE(catalog::parse(json, error)) << json;
        return error;
    };
    EXPECT_NE(error_of("[]").find("not a JSON object"), std::string::npos);
    EXPECT_NE(error_of(R"({"server":{}})").find("\"client\""), std::string::npos);
    EXPECT_NE(error_of(R"({"server":{"a":{"payload":{"x":"strnig"}}},"client":{}})").find("server.a.payload.x"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"server":{"a b":{"payload":{}}},"client":{}})").find("server.a b"), std::string::npos);
    EXPECT_NE(error_of(R"({"server":{"a":{}},"client":{}})").find("server.a.payload"), std::string::npos);
    EXPECT_NE(error_of(R"({"server":{"a":{"delivery":"sometimes","payload":{}}},"client":{}})").find("delivery"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"server":{"a":{"delivery":{"class":"latest","key":"n"},"payload":{"n":"number"}}},
                           "client":{}})")
                  .find("delivery.key"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"server":{"a":{"payload":{"e":{"enum":[]}}}},"client":{}})").find("enum"),
              std::string::npos);
}

}  // namespace
}  // namespace zena::protocol
