#include "net/tls.hpp"

#include <openssl/ssl.h>

namespace zena::net {

std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file, const std::string& key_file,
                                                            std::string& error) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                         ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use |
                         ssl::context::no_compression,
                     ec);
    if (!ec && SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
        error = "cannot require TLS 1.2 or later";
        return nullptr;
    }
    if (!ec) ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) {
        error = "server.tls_cert_file " + cert_file + ": " + ec.message();
        return nullptr;
    }
    ctx->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) {
        error = "server.tls_key_file " + key_file + ": " + ec.message();
        return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        error = "server.tls_key_file does not match the certificate";
        return nullptr;
    }
    return ctx;
}

}  // namespace zena::net
