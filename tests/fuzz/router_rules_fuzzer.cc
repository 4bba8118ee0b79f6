// Fuzzes the router's rules (services/router/recipient_router.h) with hostile
// recipient addresses and hostile account lists.
//
// Input: the first line is the recipient address. Any further lines are an
// account list (as Maddy's account command would print it) for one more
// router built for this input; fixed routers with known lists always run.
//
// Properties besides "no crash, no leak, no UB, no deadlock":
//  - Resolve fails (INVALID_ARGUMENT) exactly when the address does not parse
//    or is in a foreign domain; with an in-memory source it never UNAVAILABLE;
//  - a resolved mailbox is one of the known mailboxes (ListMailboxes) or the
//    catch-all, has no CR/LF/NUL and is valid UTF-8;
//  - the rule is the one an independent model of the documented rules picks
//    (exact, then user+tag, then role → admin, then catch-all), and the
//    mailbox matches the rule (same localpart / base / admin / catch-all);
//  - ParseAccountLines yields trimmed, non-empty, single-line names, and with
//    comments on, no name keeps a '#' comment;
//  - Resolve is deterministic and case-insensitive (ASCII-uppercasing the
//    address changes nothing), and the parsed address re-serialised with
//    ToString() resolves the same.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log/log.h"
#include "common/mail/address.h"
#include "services/router/account_source.h"
#include "services/router/recipient_router.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace mail = pocketmail::mail;
namespace router = pocketmail::router;
namespace v1 = pocketmail::router::v1;
using pocketmail::fuzz::HasLineBreakOrNul;
using pocketmail::fuzz::IsStrictUtf8;

class FixedAccounts final : public router::AccountSource {
 public:
  explicit FixedAccounts(std::vector<std::string> names) : names_(std::move(names)) {}
  absl::StatusOr<std::vector<std::string>> ListAccounts() override { return names_; }

 private:
  const std::vector<std::string> names_;
};

struct Setup {
  std::unique_ptr<router::RecipientRouter> router;
  std::string mail_domain;  // as configured ("" = any domain)
  std::string admin = "admin";
  std::string catchall = "inbox";
};

std::unique_ptr<router::AccountSource> Source(std::vector<std::string> names) {
  return std::make_unique<FixedAccounts>(std::move(names));
}

Setup Make(std::string mail_domain, std::unique_ptr<router::AccountSource> live,
           std::unique_ptr<router::AccountSource> seed, std::string admin = "admin",
           std::string catchall = "inbox") {
  router::RouterOptions options;
  options.mail_domain = mail_domain;
  options.admin_localpart = admin;
  options.catchall_localpart = catchall;
  // Never due again within a run: the lists are fixed anyway.
  options.refresh_interval = absl::Hours(24 * 365);
  absl::StatusOr<std::unique_ptr<router::RecipientRouter>> r =
      router::RecipientRouter::Create(options, std::move(live), std::move(seed));
  FUZZ_CHECK(r.ok());
  Setup s;
  s.router = *std::move(r);
  s.mail_domain = std::move(mail_domain);
  s.admin = absl::AsciiStrToLower(admin);
  s.catchall = absl::AsciiStrToLower(catchall);
  return s;
}

// Fixed routers covering the configurations the rules depend on.
std::vector<Setup>& FixedRouters() {
  static std::vector<Setup>* routers = [] {
    pocketmail::log::SetMinLevel(pocketmail::log::Level::kError);  // skipped names warn
    auto* v = new std::vector<Setup>();
    // MAIL_DOMAIN set; live list with bare names, full addresses, IDN, odd ones.
    v->push_back(Make("Example.org",
                      Source({"alice", "Bob", "admin", "inbox", "carol@example.org", "dave+x",
                              "josé", "Ünïcode", "\"quoted name\"", "eve@other.example",
                              "x@xn--bcher-kva.example", "not an address@@", "user.name"}),
                      nullptr));
    // No MAIL_DOMAIN: any domain; seed only; names in several domains.
    v->push_back(Make(
        "", nullptr,
        Source({"alice", "bob@example.org", "carol@bücher.example", "dave@xn--mller-kva.example",
                "postmaster@example.net", "root", "ADMIN@Example.ORG", "inbox@example.org"})));
    // IDN MAIL_DOMAIN, no admin and no catch-all mailbox: roles fall through.
    v->push_back(Make("bücher.example", Source({"alice", "security+x"}), Source({"bob"}), "Chef",
                      "Catch.All"));
    return v;
  }();
  return *routers;
}

// The rule a plain model of the documented rules picks for `lp`.
struct Known {
  std::string localpart;
  std::string domain_ascii;  // "" = bare name, matches any domain
  std::string display;
};

bool IsRole(const std::string& lp) {
  for (const char* role :
       {"postmaster", "abuse", "hostmaster", "webmaster", "security", "dmarc", "root"}) {
    if (lp == role) return true;
  }
  return false;
}

// Mailbox displays "lp@unicode-domain" (or a bare "lp") → their parts.
std::vector<Known> KnownMailboxes(const router::MailboxListing& listing) {
  std::vector<Known> known;
  for (const std::string& m : listing.mailboxes) {
    FUZZ_CHECK(!HasLineBreakOrNul(m));
    Known k;
    k.display = m;
    const size_t at = m.rfind('@');
    if (at == std::string::npos) {
      k.localpart = m;
    } else {
      k.localpart = m.substr(0, at);
      absl::StatusOr<mail::Domain> d = mail::NormalizeDomain(m.substr(at + 1));
      FUZZ_CHECK(d.ok());
      k.domain_ascii = d->ascii;
    }
    known.push_back(std::move(k));
  }
  return known;
}

// The mailboxes `lp` may resolve to in `domain`.
std::vector<std::string> Candidates(const std::vector<Known>& known, const std::string& lp,
                                    const mail::Domain& domain) {
  std::vector<std::string> out;
  for (const Known& k : known) {
    if (k.localpart != lp) continue;
    if (k.domain_ascii.empty()) {
      out.push_back(absl::StrCat(lp, "@", domain.unicode));
    } else if (k.domain_ascii == domain.ascii) {
      out.push_back(k.display);
    }
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v) {
    if (x == s) return true;
  }
  return false;
}

absl::StatusOr<router::Resolution> CheckResolve(Setup& s, absl::string_view address) {
  absl::StatusOr<router::Resolution> r = s.router->Resolve(address);
  absl::StatusOr<mail::EnvelopeAddress> parsed = mail::ParseEnvelopeAddress(address);
  if (!parsed.ok()) {
    FUZZ_CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    return r;
  }
  mail::Domain domain = parsed->domain;
  if (!s.mail_domain.empty()) {
    absl::StatusOr<mail::Domain> configured = mail::NormalizeDomain(s.mail_domain);
    FUZZ_CHECK(configured.ok());
    if (configured->ascii != domain.ascii) {
      FUZZ_CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
      return r;
    }
    domain = *configured;
  }
  FUZZ_CHECK(r.ok());  // the in-memory list always loads: never UNAVAILABLE
  FUZZ_CHECK(!HasLineBreakOrNul(r->mailbox));
  FUZZ_CHECK(IsStrictUtf8(r->mailbox));
  FUZZ_CHECK(!r->list_stale);

  absl::StatusOr<router::MailboxListing> listing = s.router->ListMailboxes();
  FUZZ_CHECK(listing.ok());
  const std::vector<Known> known = KnownMailboxes(*listing);

  const std::string lp = parsed->lookup_localpart();
  const size_t plus = lp.find('+');
  const std::string base = plus == std::string::npos ? lp : lp.substr(0, plus);
  const std::vector<std::string> exact = Candidates(known, lp, domain);
  const std::vector<std::string> by_base = plus != std::string::npos && plus > 0
                                               ? Candidates(known, base, domain)
                                               : std::vector<std::string>();
  const std::vector<std::string> admin =
      IsRole(base) ? Candidates(known, s.admin, domain) : std::vector<std::string>();

  if (!exact.empty()) {
    FUZZ_CHECK(r->rule == v1::RULE_EXACT);
    FUZZ_CHECK(Contains(exact, r->mailbox));
  } else if (!by_base.empty()) {
    FUZZ_CHECK(r->rule == v1::RULE_SUBADDRESS);
    FUZZ_CHECK(Contains(by_base, r->mailbox));
  } else if (!admin.empty()) {
    FUZZ_CHECK(r->rule == v1::RULE_ROLE_ALIAS);
    FUZZ_CHECK(Contains(admin, r->mailbox));
  } else {
    FUZZ_CHECK(r->rule == v1::RULE_CATCH_ALL);
    FUZZ_CHECK(r->mailbox == absl::StrCat(s.catchall, "@", domain.unicode));
  }
  return r;
}

bool SameOutcome(const absl::StatusOr<router::Resolution>& a,
                 const absl::StatusOr<router::Resolution>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return a.status().code() == b.status().code();
  return a->mailbox == b->mailbox && a->rule == b->rule;
}

void CheckRouter(Setup& s, absl::string_view address) {
  absl::StatusOr<router::Resolution> r = CheckResolve(s, address);
  FUZZ_CHECK(SameOutcome(r, s.router->Resolve(address)));
  FUZZ_CHECK(SameOutcome(r, CheckResolve(s, absl::AsciiStrToUpper(address))));
  absl::StatusOr<mail::EnvelopeAddress> parsed = mail::ParseEnvelopeAddress(address);
  if (parsed.ok()) {
    const std::string text = parsed->ToString();
    if (text.size() <= mail::kMaxAddressOctets) FUZZ_CHECK(SameOutcome(r, CheckResolve(s, text)));
  }
}

void CheckAccountLines(const std::string& text) {
  for (bool comments : {false, true}) {
    for (const std::string& name : router::ParseAccountLines(text, comments)) {
      FUZZ_CHECK(!name.empty());
      FUZZ_CHECK(name.find('\n') == std::string::npos);
      FUZZ_CHECK(absl::StripAsciiWhitespace(name) == name);
      if (comments) {
        FUZZ_CHECK(name[0] != '#');
        FUZZ_CHECK(name.find(" #") == std::string::npos && name.find("\t#") == std::string::npos);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  const absl::string_view address = input.substr(0, nl);
  for (Setup& s : FixedRouters()) CheckRouter(s, address);

  if (nl != absl::string_view::npos) {
    const std::string list(input.substr(nl + 1));
    CheckAccountLines(list);
    std::vector<std::string> names = router::ParseAccountLines(list, /*comments=*/false);
    if (names.size() > 64) names.resize(64);
    for (const std::string& name : names) FUZZ_CHECK(!name.empty());
    Setup live = Make("", Source(names), nullptr);
    CheckRouter(live, address);
    Setup seeded = Make("example.org", nullptr, Source(std::move(names)));
    CheckRouter(seeded, address);
  }
  return 0;
}
