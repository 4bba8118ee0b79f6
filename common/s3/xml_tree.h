// A small, defensive XML reader for S3 response bodies, built on expat.
//
// S3 bodies come over the network: this reader refuses any DOCTYPE (so no
// entity declarations, external entities or "billion laughs" expansion can
// happen), never fetches anything, and bounds size, depth, element count and
// text length. Only the five predefined entities and character references are
// expanded. Thread-safe (no shared state).
#ifndef POCKETMAIL_COMMON_S3_XML_TREE_H_
#define POCKETMAIL_COMMON_S3_XML_TREE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pocketmail::s3 {

struct XmlElement {
  std::string name;  // local name: a namespace prefix ("s3:Key") is dropped
  std::string text;  // character data directly inside this element, entities expanded
  std::vector<XmlElement> children;

  // The first child named `name`; nullptr when there is none.
  const XmlElement* Child(absl::string_view name) const;
  int CountChildren(absl::string_view name) const;
};

struct XmlLimits {
  size_t max_document_bytes = 16 << 20;
  int max_depth = 16;
  size_t max_elements = 100000;
  size_t max_text_bytes = 64 << 10;  // per element
};

// Parses a whole document. INVALID_ARGUMENT (with expat's reason, line and
// column) for malformed or truncated XML, a DOCTYPE, or a limit exceeded.
absl::StatusOr<XmlElement> ParseXml(absl::string_view document, const XmlLimits& limits = {});

}  // namespace pocketmail::s3

#endif  // POCKETMAIL_COMMON_S3_XML_TREE_H_
