// The router as a part that can be hosted: its settings, the live account
// list (refreshed in the background) and the gRPC service over it. The router
// binary serves it alone; services/pocketmaild hosts it next to the others.
#ifndef POCKETMAIL_SERVICES_ROUTER_ROUTER_COMPONENT_H_
#define POCKETMAIL_SERVICES_ROUTER_ROUTER_COMPONENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/settings.h"
#include "services/router/recipient_router.h"
#include "services/router/router_service.h"

namespace pocketmail::router {

std::vector<config::Spec> RouterSpecs();

// The router's settings, checked and converted.
struct RouterConfig {
  RouterOptions router;
  std::string accounts_cmd;  // MAIL_ACCOUNTS_CMD; "" = the seed file only
  absl::Duration accounts_timeout = absl::Seconds(10);
  std::string users_file;  // MAIL_USERS_FILE; "" = none
};

// INVALID_ARGUMENT names the setting that is not a number or out of range.
absl::StatusOr<RouterConfig> ParseRouterConfig(const config::Settings& settings);

class RouterComponent {
 public:
  // Builds the router and starts its background refresh. INVALID_ARGUMENT: bad settings.
  static absl::StatusOr<std::unique_ptr<RouterComponent>> Create(const config::Settings& settings);
  static absl::StatusOr<std::unique_ptr<RouterComponent>> Create(RouterConfig config);

  RouterServiceImpl& service() { return *service_; }

 private:
  RouterComponent() = default;
  std::unique_ptr<RecipientRouter> router_;
  std::unique_ptr<RouterServiceImpl> service_;
};

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_ROUTER_COMPONENT_H_
