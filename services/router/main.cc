// The router service binary: keeps Maddy's account list fresh and answers
// Resolve / ListMailboxes on its unix socket until SIGTERM.
#include <iostream>
#include <memory>
#include <string>

#include "common/config/settings.h"
#include "common/log/log.h"
#include "common/server/service_host.h"
#include "services/router/account_source.h"
#include "services/router/recipient_router.h"
#include "services/router/router_service.h"

namespace pocketmail::router {
namespace {

std::vector<config::Spec> RouterSpecs() {
  return {
      {"MAIL_DOMAIN", "", "the mail domain; recipients in other domains are rejected"},
      {"MAIL_ADMIN_LOCALPART", "admin", "mailbox that role addresses (postmaster, abuse...) reach"},
      {"MAIL_CATCHALL_LOCALPART", "inbox", "mailbox for recipients that match no account"},
      {"MAIL_USERS_FILE", "", "optional seed list of mailboxes, one per line"},
      {"MAIL_ACCOUNTS_CMD", "maddy imap-acct list",
       "shell command printing one account per line (empty: seed file only)"},
      {"MAIL_ACCOUNTS_REFRESH_S", "60", "re-read the account list at most this often"},
      {"MAIL_ACCOUNTS_TIMEOUT_S", "10", "kill the account command after this long"},
      {"MAIL_ACCOUNTS_WATCH", "", "optional file (e.g. imapsql.db) whose change triggers a re-read"},
  };
}

int Run(int argc, char** argv) {
  int exit_code = 0;
  std::optional<config::Settings> settings =
      server::LoadServiceSettings("router", argc, argv, RouterSpecs(), &exit_code);
  if (!settings) return exit_code;

  absl::StatusOr<int64_t> refresh_s = settings->GetInt("MAIL_ACCOUNTS_REFRESH_S");
  absl::StatusOr<int64_t> timeout_s = settings->GetInt("MAIL_ACCOUNTS_TIMEOUT_S");
  for (const auto* value : {&refresh_s, &timeout_s}) {
    if (!value->ok() || **value <= 0) {
      log::Error("bad configuration", {{"error", value->ok() ? "refresh and timeout must be > 0"
                                                              : std::string(value->status().message())}});
      return 2;
    }
  }

  RouterOptions options;
  options.mail_domain = settings->Get("MAIL_DOMAIN");
  options.admin_localpart = settings->Get("MAIL_ADMIN_LOCALPART");
  options.catchall_localpart = settings->Get("MAIL_CATCHALL_LOCALPART");
  options.refresh_interval = absl::Seconds(*refresh_s);
  options.watch_path = settings->Get("MAIL_ACCOUNTS_WATCH");
  std::unique_ptr<AccountSource> live, seed;
  if (std::string cmd = settings->Get("MAIL_ACCOUNTS_CMD"); !cmd.empty()) {
    live = std::make_unique<CommandAccountSource>(cmd, absl::Seconds(*timeout_s));
  }
  if (std::string file = settings->Get("MAIL_USERS_FILE"); !file.empty()) {
    seed = std::make_unique<SeedFileAccountSource>(file);
  }
  if (options.mail_domain.empty()) {
    log::Warn("MAIL_DOMAIN is unset: recipients in any domain are accepted");
  }
  absl::StatusOr<std::unique_ptr<RecipientRouter>> router =
      RecipientRouter::Create(options, std::move(live), std::move(seed));
  if (!router.ok()) {
    log::Error("bad configuration", {{"error", std::string(router.status().message())}});
    return 2;
  }
  (*router)->StartBackgroundRefresh();

  RouterServiceImpl service(router->get());
  return server::ServeUntilStopped("router", *settings, {&service});
}

}  // namespace
}  // namespace pocketmail::router

int main(int argc, char** argv) { return pocketmail::router::Run(argc, argv); }
