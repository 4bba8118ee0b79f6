#include "services/router/router_component.h"

#include <string>

#include "common/log/log.h"
#include "services/router/account_source.h"

namespace pocketmail::router {

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
      {"MAIL_ACCOUNTS_WATCH", "",
       "optional file (e.g. imapsql.db) whose change triggers a re-read"},
  };
}

absl::StatusOr<std::unique_ptr<RouterComponent>> RouterComponent::Create(
    const config::Settings& settings) {
  absl::StatusOr<int64_t> refresh_s = settings.GetInt("MAIL_ACCOUNTS_REFRESH_S");
  absl::StatusOr<int64_t> timeout_s = settings.GetInt("MAIL_ACCOUNTS_TIMEOUT_S");
  for (const auto* value : {&refresh_s, &timeout_s}) {
    if (!value->ok()) return absl::InvalidArgumentError(value->status().message());
    if (**value <= 0) return absl::InvalidArgumentError("refresh and timeout must be > 0");
  }

  RouterOptions options;
  options.mail_domain = settings.Get("MAIL_DOMAIN");
  options.admin_localpart = settings.Get("MAIL_ADMIN_LOCALPART");
  options.catchall_localpart = settings.Get("MAIL_CATCHALL_LOCALPART");
  options.refresh_interval = absl::Seconds(*refresh_s);
  options.watch_path = settings.Get("MAIL_ACCOUNTS_WATCH");
  std::unique_ptr<AccountSource> live, seed;
  if (std::string cmd = settings.Get("MAIL_ACCOUNTS_CMD"); !cmd.empty()) {
    live = std::make_unique<CommandAccountSource>(cmd, absl::Seconds(*timeout_s));
  }
  if (std::string file = settings.Get("MAIL_USERS_FILE"); !file.empty()) {
    seed = std::make_unique<SeedFileAccountSource>(file);
  }
  if (options.mail_domain.empty()) {
    log::Warn("MAIL_DOMAIN is unset: recipients in any domain are accepted");
  }
  absl::StatusOr<std::unique_ptr<RecipientRouter>> router =
      RecipientRouter::Create(options, std::move(live), std::move(seed));
  if (!router.ok()) return absl::InvalidArgumentError(router.status().message());
  (*router)->StartBackgroundRefresh();

  auto component = std::unique_ptr<RouterComponent>(new RouterComponent());
  component->router_ = *std::move(router);
  component->service_ = std::make_unique<RouterServiceImpl>(component->router_.get());
  return component;
}

}  // namespace pocketmail::router
