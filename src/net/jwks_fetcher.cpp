#include "net/jwks_fetcher.hpp"

#include <openssl/ssl.h>

#include <future>
#include <thread>

#include "observability/log.hpp"
#include "util/url.hpp"
#include "ws/asio.hpp"

namespace zena::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

struct jwks_fetcher::impl {
    impl(jwks_fetch_settings s, const auth::jwt_verifier& v)
        : settings(std::move(s)),
          verifier(v),
          tls(asio::ssl::context::tls_client),
          work(asio::make_work_guard(io)),
          timer(io) {
        boost::system::error_code ec;
        tls.set_verify_mode(asio::ssl::verify_peer, ec);
        if (settings.ca_file.empty()) {
            tls.set_default_verify_paths(ec);
        } else {
            tls.load_verify_file(settings.ca_file, ec);
        }
        (void)SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    }

    // One GET; calls done on the fetcher thread, after installing the keys on success.
    void fetch(std::function<void(util::status)> done) {
        auto state = std::make_shared<attempt>(io, tls, url.tls);
        auto finish = [this, state, done = std::move(done)](util::status status) {
            if (state->finished) return;
            state->finished = true;
            state->deadline.cancel();
            boost::system::error_code ignored;
            state->tcp().socket().close(ignored);
            done(std::move(status));
        };
        const auto fail = [finish](std::string why) { finish(util::error{std::move(why)}); };
        state->deadline.expires_after(settings.timeout);
        state->deadline.async_wait([finish](boost::system::error_code ec) {
            if (!ec) finish(util::error{"timed out"});
        });
        state->request = {http::verb::get, url.target, 11};
        state->request.set(http::field::host, url.host);
        state->request.set(http::field::user_agent, "zena-realtime");
        state->request.set(http::field::accept, "application/json");
        resolver.async_resolve(
            url.host, url.port, [this, state, finish, fail](boost::system::error_code ec, const auto& r) {
                if (ec) return fail("resolve: " + ec.message());
                state->tcp().async_connect(
                    r, [this, state, finish, fail](boost::system::error_code connect_ec, const auto&) {
                        if (connect_ec) return fail("connect: " + connect_ec.message());
                        if (!url.tls) return send(state, finish);
                        auto& stream = *state->tls_stream;
                        if (SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()) != 1) {
                            return fail("cannot set SNI");
                        }
                        stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
                        stream.async_handshake(asio::ssl::stream_base::client,
                                               [this, state, finish, fail](boost::system::error_code hs) {
                                                   if (hs) return fail("tls: " + hs.message());
                                                   send(state, finish);
                                               });
                    });
            });
    }

    struct attempt {
        attempt(asio::io_context& io, asio::ssl::context& ctx, bool use_tls) : deadline(io) {
            if (use_tls) {
                tls_stream.emplace(beast::tcp_stream(io), ctx);
            } else {
                plain.emplace(io);
            }
        }
        beast::tcp_stream& tcp() { return plain ? *plain : tls_stream->next_layer(); }
        std::optional<beast::tcp_stream> plain;
        std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream;
        asio::steady_timer deadline;
        http::request<http::empty_body> request;
        http::response_parser<http::string_body> parser;
        beast::flat_buffer buffer;
        bool finished = false;
    };

    template <typename Finish>
    void send(const std::shared_ptr<attempt>& state, Finish finish) {
        const auto fail = [finish](std::string why) { finish(util::error{std::move(why)}); };
        state->parser.body_limit(1024 * 1024);  // a JWKS is a few KiB
        auto on_response = [this, state, finish, fail](boost::system::error_code ec, std::size_t) {
            if (ec) return fail("read: " + ec.message());
            const auto& response = state->parser.get();
            if (response.result_int() != 200) return fail("status " + std::to_string(response.result_int()));
            std::string error;
            auto keys = auth::key_set::parse(response.body(), error);
            if (!keys) return fail("the JWKS does not load: " + error);
            const auto count = keys->size();
            verifier.set_keys(std::make_shared<const auth::key_set>(std::move(*keys)));
            spdlog::info("jwks fetched url={} keys={}", util::to_string(settings.url), count);
            finish(util::status{});
        };
        auto on_written = [state, on_response](boost::system::error_code ec, std::size_t) {
            if (ec) return on_response(ec, 0);
            if (state->plain) {
                http::async_read(*state->plain, state->buffer, state->parser, on_response);
            } else {
                http::async_read(*state->tls_stream, state->buffer, state->parser, on_response);
            }
        };
        if (state->plain) {
            http::async_write(*state->plain, state->request, on_written);
        } else {
            http::async_write(*state->tls_stream, state->request, on_written);
        }
    }

    void schedule() {
        timer.expires_after(settings.refresh);
        timer.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            fetch([this](const util::status& fetched) {
                if (!fetched) {
                    spdlog::warn("jwks refresh failed, keeping the keys in use url={} error=\"{}\"",
                                 util::to_string(settings.url), fetched.message());
                }
                schedule();
            });
        });
    }

    jwks_fetch_settings settings;
    const auth::jwt_verifier& verifier;
    const util::http_url& url = settings.url;
    asio::io_context io{1};
    asio::ssl::context tls;
    asio::executor_work_guard<asio::io_context::executor_type> work;
    asio::ip::tcp::resolver resolver{io};
    asio::steady_timer timer;
    std::thread thread;
};

jwks_fetcher::jwks_fetcher(jwks_fetch_settings settings, const auth::jwt_verifier& verifier)
    : impl_(std::make_unique<impl>(std::move(settings), verifier)) {}

jwks_fetcher::~jwks_fetcher() {
    impl_->io.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

util::status jwks_fetcher::start() {
    std::promise<util::status> first;
    auto result = first.get_future();
    asio::post(impl_->io, [this, &first] {
        impl_->fetch([this, &first](util::status fetched) {
            first.set_value(std::move(fetched));
            impl_->schedule();
        });
    });
    impl_->thread = std::thread([this] { impl_->io.run(); });
    return result.get();
}

}  // namespace zena::net
