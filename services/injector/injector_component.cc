#include "services/injector/injector_component.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "services/injector/probe_credentials.h"

namespace pocketmail::injector {
namespace {

// The probe's credentials: INBOX_USER, ADMIN_USER, then the file (later wins).
absl::StatusOr<ProbeCredentials> LoadProbeCredentials(const config::Settings& settings) {
  ProbeCredentials credentials;
  for (const auto& [user_name, pass_name] :
       {std::pair<const char*, const char*>{"INBOX_USER", "INBOX_PASS"},
        std::pair<const char*, const char*>{"ADMIN_USER", "ADMIN_PASS"}}) {
    const std::string user = settings.Get(user_name);
    const std::string pass = settings.Get(pass_name);
    if (user.empty() && pass.empty()) continue;
    if (user.empty() || pass.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(user_name, " and ", pass_name, " must be set together"));
    }
    if (absl::Status s = credentials.Set(user, pass); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(user_name, ": ", s.message()));
    }
  }
  const std::string file = settings.Get("PROBE_CREDENTIALS_FILE");
  if (!file.empty()) {
    if (absl::Status s = LoadProbeCredentialsFile(file, &credentials); !s.ok()) return s;
  }
  return credentials;
}

}  // namespace

std::vector<config::Spec> InjectorSpecs() {
  return {
      {"MAIL_INJECT_HOST", "127.0.0.1",
       "Maddy's SMTP inject (submission) endpoint host, when MAIL_LMTP_SOCKET is unset"},
      {"MAIL_INJECT_PORT", "9125",
       "Maddy's SMTP inject (submission) endpoint port, when MAIL_LMTP_SOCKET is unset"},
      {"MAIL_HOSTNAME", "localhost", "name sent in EHLO/LHLO"},
      {"INJECT_USER", "",
       "SMTP AUTH user for the submission endpoint (mail-inject.env); LMTP sends no AUTH"},
      {"INJECT_PASS", "", "SMTP AUTH password (mail-inject.env)", /*secret=*/true},
      {"MAIL_INJECT_CA_FILE", "",
       "CA to verify Maddy's STARTTLS cert against; when set, STARTTLS is required"},
      {"MAIL_INJECT_TLS_NAME", "", "name Maddy's cert must carry (default MAIL_INJECT_HOST)"},
      {"INJECT_MAX_SESSIONS", "4", "SMTP sessions kept open and shared by concurrent calls"},
      {"MAIL_INJECT_TIMEOUT_S", "60", "timeout for each SMTP command and reply"},
      {"MAIL_LMTP_SOCKET", "",
       "deliver over LMTP on this unix socket (Maddy's lmtp endpoint; the installer's default) "
       "instead of SMTP"},
      {"MAIL_IMAP_HOST", "127.0.0.1", "Maddy's IMAP endpoint host, searched by delivery probes"},
      {"MAIL_IMAP_PORT", "9143", "Maddy's IMAP endpoint port (plain IMAP on loopback)"},
      {"INBOX_USER", "",
       "catch-all mailbox the probe may log into: its full address as Maddy knows it "
       "(mail-inject.env)"},
      {"INBOX_PASS", "", "IMAP password of INBOX_USER (mail-inject.env)", /*secret=*/true},
      {"ADMIN_USER", "", "admin mailbox the probe may log into: its full address (mail-admin.env)"},
      {"ADMIN_PASS", "", "IMAP password of ADMIN_USER (mail-admin.env)", /*secret=*/true},
      {"PROBE_CREDENTIALS_FILE", "",
       "0600 file of mailbox=password lines: more mailboxes the probe may log into; "
       "mailboxes without credentials are answered NO_PROBE"},
      {"PROBE_TIMEOUT_S", "20", "timeout for one delivery probe (connect, login, search)"},
  };
}

absl::StatusOr<InjectorConfig> ParseInjectorConfig(const config::Settings& settings) {
  absl::StatusOr<int64_t> port = settings.GetIntInRange("MAIL_INJECT_PORT", 1, 65535);
  if (!port.ok()) return port.status();
  absl::StatusOr<int64_t> sessions = settings.GetIntInRange("INJECT_MAX_SESSIONS", 1, 64);
  if (!sessions.ok()) return sessions.status();
  absl::StatusOr<int64_t> timeout_s = settings.GetIntAtLeast("MAIL_INJECT_TIMEOUT_S", 1);
  if (!timeout_s.ok()) return timeout_s.status();

  InjectorConfig config;
  config.max_sessions = static_cast<int>(*sessions);
  smtp::SessionOptions& smtp = config.smtp;
  smtp.unix_socket = settings.Get("MAIL_LMTP_SOCKET");
  smtp.lmtp = !smtp.unix_socket.empty();
  smtp.host = settings.Get("MAIL_INJECT_HOST");
  smtp.port = static_cast<int>(*port);
  smtp.helo_name = settings.Get("MAIL_HOSTNAME");
  // LMTP has no AUTH: who may connect is decided by the socket's 0700
  // directory. The inject credential is for the submission endpoint only.
  if (!smtp.lmtp) {
    smtp.user = settings.Get("INJECT_USER");
    smtp.password = settings.Get("INJECT_PASS");
  }
  smtp.ca_file = settings.Get("MAIL_INJECT_CA_FILE");
  smtp.tls_server_name = settings.Get("MAIL_INJECT_TLS_NAME");
  smtp.command_timeout = absl::Seconds(*timeout_s);
  // Maddy may fsync and update SQLite before answering the final "."; give it
  // more room than a plain command.
  smtp.final_reply_timeout = absl::Seconds(2 * *timeout_s);
  smtp.connect_timeout = absl::Seconds(std::min<int64_t>(*timeout_s, 10));
  if (!smtp.lmtp && !smtp.user.empty() && smtp.password.empty()) {
    return absl::InvalidArgumentError("INJECT_USER is set but INJECT_PASS is not");
  }

  absl::StatusOr<int64_t> imap_port = settings.GetIntInRange("MAIL_IMAP_PORT", 1, 65535);
  if (!imap_port.ok()) return imap_port.status();
  absl::StatusOr<int64_t> probe_timeout_s = settings.GetIntAtLeast("PROBE_TIMEOUT_S", 1);
  if (!probe_timeout_s.ok()) return probe_timeout_s.status();
  absl::StatusOr<ProbeCredentials> credentials = LoadProbeCredentials(settings);
  if (!credentials.ok()) return absl::InvalidArgumentError(credentials.status().message());
  config.probe.host = settings.Get("MAIL_IMAP_HOST");
  config.probe.port = static_cast<int>(*imap_port);
  config.probe.timeout = absl::Seconds(*probe_timeout_s);
  config.probe_credentials = *std::move(credentials);
  return config;
}

absl::StatusOr<std::unique_ptr<InjectorComponent>> InjectorComponent::Create(
    const config::Settings& settings) {
  absl::StatusOr<InjectorConfig> config = ParseInjectorConfig(settings);
  if (!config.ok()) return config.status();
  return Create(*std::move(config));
}

std::unique_ptr<InjectorComponent> InjectorComponent::Create(InjectorConfig config) {
  const smtp::SessionOptions& smtp = config.smtp;
  if (smtp.user.empty() && !smtp.lmtp) {
    log::Warn("INJECT_USER is unset: no SMTP AUTH (Maddy's submission endpoint requires it)");
  }
  log::Info("delivering",
            {{"via", smtp.lmtp ? "lmtp" : "smtp"},
             {"to", smtp.lmtp ? smtp.unix_socket : smtp.host + ":" + std::to_string(smtp.port)},
             {"sessions", static_cast<long long>(config.max_sessions)}});
  const std::vector<std::string> probed = config.probe_credentials.Mailboxes();
  if (probed.empty()) {
    log::Warn("no probe credentials: every delivery probe will answer NO_PROBE");
  } else {
    log::Info("probing", {{"imap", config.probe.host + ":" + std::to_string(config.probe.port)},
                          {"mailboxes", absl::StrJoin(probed, ",")}});
  }
  auto component = std::unique_ptr<InjectorComponent>(new InjectorComponent());
  component->probe_ =
      std::make_unique<DeliveryProbe>(config.probe, std::move(config.probe_credentials));
  component->pool_ = std::make_unique<smtp::SessionPool>(config.smtp, config.max_sessions);
  component->service_ = std::make_unique<InjectorServiceImpl>(
      component->pool_.get(), InjectorOptions(), component->probe_.get());
  return component;
}

}  // namespace pocketmail::injector
