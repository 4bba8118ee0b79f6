// The injector service binary: delivers messages streamed over gRPC into the
// local Maddy (SMTP with AUTH on loopback, or LMTP on a unix socket) until
// SIGTERM.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "common/config/settings.h"
#include "common/log/log.h"
#include "common/server/service_host.h"
#include "common/smtp/session_pool.h"
#include "services/injector/injector_service.h"

namespace pocketmail::injector {
namespace {

std::vector<config::Spec> InjectorSpecs() {
  return {
      {"MAIL_INJECT_HOST", "127.0.0.1", "Maddy's SMTP inject endpoint host"},
      {"MAIL_INJECT_PORT", "9125", "Maddy's SMTP inject endpoint port"},
      {"MAIL_HOSTNAME", "localhost", "name sent in EHLO/LHLO"},
      {"INJECT_USER", "", "SMTP AUTH user (mail-inject.env)"},
      {"INJECT_PASS", "", "SMTP AUTH password (mail-inject.env)", /*secret=*/true},
      {"MAIL_INJECT_CA_FILE", "",
       "CA to verify Maddy's STARTTLS cert against; when set, STARTTLS is required"},
      {"MAIL_INJECT_TLS_NAME", "", "name Maddy's cert must carry (default MAIL_INJECT_HOST)"},
      {"INJECT_MAX_SESSIONS", "4", "SMTP sessions kept open and shared by concurrent calls"},
      {"MAIL_INJECT_TIMEOUT_S", "60", "timeout for each SMTP command and reply"},
      {"MAIL_LMTP_SOCKET", "", "deliver over LMTP on this unix socket instead of SMTP"},
  };
}

int Run(int argc, char** argv) {
  log::SetService("injector");
  absl::StatusOr<config::Settings> settings =
      config::Settings::Load(argc, argv, server::StandardSpecs("injector", InjectorSpecs()));
  if (!settings.ok()) {
    if (settings.status().code() == absl::StatusCode::kNotFound) {  // --help
      std::cout << settings.status().message() << std::endl;
      return 0;
    }
    log::Error("bad configuration", {{"error", std::string(settings.status().message())}});
    return 2;
  }
  for (const std::string& line : settings->Describe()) log::Info("setting", {{"value", line}});

  auto fail = [](const std::string& why) {
    log::Error("bad configuration", {{"error", why}});
    return 2;
  };
  absl::StatusOr<int64_t> port = settings->GetInt("MAIL_INJECT_PORT");
  absl::StatusOr<int64_t> sessions = settings->GetInt("INJECT_MAX_SESSIONS");
  absl::StatusOr<int64_t> timeout_s = settings->GetInt("MAIL_INJECT_TIMEOUT_S");
  for (const auto* v : {&port, &sessions, &timeout_s}) {
    if (!v->ok()) return fail(std::string(v->status().message()));
  }
  if (*port < 1 || *port > 65535) return fail("MAIL_INJECT_PORT must be 1..65535");
  if (*sessions < 1 || *sessions > 64) return fail("INJECT_MAX_SESSIONS must be 1..64");
  if (*timeout_s < 1) return fail("MAIL_INJECT_TIMEOUT_S must be >= 1");

  smtp::SessionOptions smtp;
  smtp.unix_socket = settings->Get("MAIL_LMTP_SOCKET");
  smtp.lmtp = !smtp.unix_socket.empty();
  smtp.host = settings->Get("MAIL_INJECT_HOST");
  smtp.port = static_cast<int>(*port);
  smtp.helo_name = settings->Get("MAIL_HOSTNAME");
  smtp.user = settings->Get("INJECT_USER");
  smtp.password = settings->Get("INJECT_PASS");
  smtp.ca_file = settings->Get("MAIL_INJECT_CA_FILE");
  smtp.tls_server_name = settings->Get("MAIL_INJECT_TLS_NAME");
  smtp.command_timeout = absl::Seconds(*timeout_s);
  // Maddy may fsync and update SQLite before answering the final "."; give it
  // more room than a plain command.
  smtp.final_reply_timeout = absl::Seconds(2 * *timeout_s);
  smtp.connect_timeout = absl::Seconds(std::min<int64_t>(*timeout_s, 10));
  if (!smtp.user.empty() && smtp.password.empty()) {
    return fail("INJECT_USER is set but INJECT_PASS is not");
  }
  if (smtp.user.empty() && !smtp.lmtp) {
    log::Warn("INJECT_USER is unset: no SMTP AUTH (Maddy's submission endpoint requires it)");
  }
  log::Info("delivering",
            {{"via", smtp.lmtp ? "lmtp" : "smtp"},
             {"to", smtp.lmtp ? smtp.unix_socket : smtp.host + ":" + std::to_string(smtp.port)},
             {"sessions", static_cast<long long>(*sessions)}});

  smtp::SessionPool pool(smtp, static_cast<int>(*sessions));
  InjectorServiceImpl service(&pool);
  auto host =
      server::ServiceHost::Start(server::OptionsFromSettings("injector", *settings), {&service});
  if (!host.ok()) {
    log::Error("cannot start serving", {{"error", std::string(host.status().message())}});
    return 1;
  }
  (*host)->Wait();
  return 0;
}

}  // namespace
}  // namespace pocketmail::injector

int main(int argc, char** argv) { return pocketmail::injector::Run(argc, argv); }
