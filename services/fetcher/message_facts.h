// What the ledger records about a message for the webmail/auth gateway
// (ledger.v1.MessageFacts): who it is for, from whom, about what, which bytes
// and when the Worker took it. The object's metadata says most of it (the
// bucket contract); objects the original Worker wrote lack some of it, and
// then the message itself or the listing fills in.
#ifndef POCKETMAIL_SERVICES_FETCHER_MESSAGE_FACTS_H_
#define POCKETMAIL_SERVICES_FETCHER_MESSAGE_FACTS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "common/s3/object_store.h"
#include "pocketmail/ledger/v1/ledger.pb.h"

namespace pocketmail::fetcher {

// `verified_sha256` is recorded only when the content check passed (pass ""
// otherwise). The subject is the `subject` metadata, else the message's own
// Subject field, RFC 2047-decoded; control characters become spaces.
ledger::v1::MessageFacts FactsFor(const s3::Object& object, absl::string_view verified_sha256);

// The unfolded value of the first `name` field in the message's header
// section (case-insensitive name), or nullopt when there is none. Reads no
// further than the blank line that ends the header section.
std::optional<std::string> HeaderFieldValue(absl::string_view message, absl::string_view name);

}  // namespace pocketmail::fetcher

#endif  // POCKETMAIL_SERVICES_FETCHER_MESSAGE_FACTS_H_
