// The router as a part that can be hosted: its settings, the live account
// list (refreshed in the background) and the gRPC service over it. The router
// binary serves it alone; services/pocketmaild hosts it next to the others.
#ifndef POCKETMAIL_SERVICES_ROUTER_ROUTER_COMPONENT_H_
#define POCKETMAIL_SERVICES_ROUTER_ROUTER_COMPONENT_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/settings.h"
#include "services/router/recipient_router.h"
#include "services/router/router_service.h"

namespace pocketmail::router {

std::vector<config::Spec> RouterSpecs();

class RouterComponent {
 public:
  // Builds the router and starts its background refresh. INVALID_ARGUMENT: bad settings.
  static absl::StatusOr<std::unique_ptr<RouterComponent>> Create(const config::Settings& settings);

  RouterServiceImpl& service() { return *service_; }

 private:
  RouterComponent() = default;
  std::unique_ptr<RecipientRouter> router_;
  std::unique_ptr<RouterServiceImpl> service_;
};

}  // namespace pocketmail::router

#endif  // POCKETMAIL_SERVICES_ROUTER_ROUTER_COMPONENT_H_
