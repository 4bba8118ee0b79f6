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

absl::StatusOr<RouterConfig> ParseRouterConfig(const config::Settings& settings) {
  absl::StatusOr<int64_t> refresh_s = settings.GetIntAtLeast("MAIL_ACCOUNTS_REFRESH_S", 1);
  if (!refresh_s.ok()) return refresh_s.status();
  absl::StatusOr<int64_t> timeout_s = settings.GetIntAtLeast("MAIL_ACCOUNTS_TIMEOUT_S", 1);
  if (!timeout_s.ok()) return timeout_s.status();

  RouterConfig config;
  config.router.mail_domain = settings.Get("MAIL_DOMAIN");
  config.router.admin_localpart = settings.Get("MAIL_ADMIN_LOCALPART");
  config.router.catchall_localpart = settings.Get("MAIL_CATCHALL_LOCALPART");
  config.router.refresh_interval = absl::Seconds(*refresh_s);
  config.router.watch_path = settings.Get("MAIL_ACCOUNTS_WATCH");
  config.accounts_cmd = settings.Get("MAIL_ACCOUNTS_CMD");
  config.accounts_timeout = absl::Seconds(*timeout_s);
  config.users_file = settings.Get("MAIL_USERS_FILE");
  return config;
}

absl::StatusOr<std::unique_ptr<RouterComponent>> RouterComponent::Create(
    const config::Settings& settings) {
  absl::StatusOr<RouterConfig> config = ParseRouterConfig(settings);
  if (!config.ok()) return config.status();
  return Create(*std::move(config));
}

absl::StatusOr<std::unique_ptr<RouterComponent>> RouterComponent::Create(RouterConfig config) {
  std::unique_ptr<AccountSource> live, seed;
  if (!config.accounts_cmd.empty()) {
    live = std::make_unique<CommandAccountSource>(config.accounts_cmd, config.accounts_timeout);
  }
  if (!config.users_file.empty()) {
    seed = std::make_unique<SeedFileAccountSource>(config.users_file);
  }
  if (config.router.mail_domain.empty()) {
    log::Warn("MAIL_DOMAIN is unset: recipients in any domain are accepted");
  }
  absl::StatusOr<std::unique_ptr<RecipientRouter>> router =
      RecipientRouter::Create(config.router, std::move(live), std::move(seed));
  if (!router.ok()) return absl::InvalidArgumentError(router.status().message());
  (*router)->StartBackgroundRefresh();

  auto component = std::unique_ptr<RouterComponent>(new RouterComponent());
  component->router_ = *std::move(router);
  component->service_ = std::make_unique<RouterServiceImpl>(component->router_.get());
  return component;
}

}  // namespace pocketmail::router
