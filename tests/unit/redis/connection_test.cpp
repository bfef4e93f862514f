#include "redis/connection.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace zena::redis {
namespace {

TEST(RedisUrl, ParsesHostPortCredentialsAndDatabase) {
    auto e = parse_url("redis://127.0.0.1:6379");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->host, "127.0.0.1");
    EXPECT_EQ(e->port, 6379);
    EXPECT_EQ(e->password, "");
    EXPECT_EQ(e->db, 0);

    e = parse_url("redis://zena:p%40ss@cache.internal:6380/3");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->username, "zena");
    EXPECT_EQ(e->password, "p@ss");
    EXPECT_EQ(e->host, "cache.internal");
    EXPECT_EQ(e->port, 6380);
    EXPECT_EQ(e->db, 3);

    e = parse_url("redis://:secret@[::1]/");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->username, "");
    EXPECT_EQ(e->password, "secret");
    EXPECT_EQ(e->host, "::1");
    EXPECT_EQ(e->port, 6379);
}

TEST(RedisUrl, RefusesWhatItCannotConnectTo) {
    for (const auto* bad : {"rediss://h:6380", "http://h", "redis://", "redis://:6379", "redis://h:0", "redis://h:port",
                            "redis://h:70000", "redis://h/db", "redis://h/-1", "redis://[::1", "redis://p%zz@h"}) {
        EXPECT_FALSE(parse_url(bad)) << bad;
    }
}

// The wire format of RESP 2 commands: an array of bulk strings, each with its length.
TEST(RedisCommandWriter, WritesAnArrayOfBulkStringsAndJoinsParts) {
    const std::string_view key[] = {"zena", ":{", "user:42", "}:m"};
    const std::string command = command_writer(3).arg("HGET").arg(key).arg({"", ""}).take();
    EXPECT_EQ(command, "*3\r\n$4\r\nHGET\r\n$16\r\nzena:{user:42}:m\r\n$0\r\n\r\n");
}

TEST(RedisCommandWriter, EncodeKeepsBinaryBytesAndLongArguments) {
    const std::string binary{"a\0\r\nb", 5};
    const std::string long_arg(100000, 'x');
    const std::string_view args[] = {"SET", binary, long_arg};
    const std::string command = encode(args);
    EXPECT_EQ(command, "*3\r\n$3\r\nSET\r\n$5\r\n" + binary + "\r\n$100000\r\n" + long_arg + "\r\n");
}

}  // namespace
}  // namespace zena::redis
