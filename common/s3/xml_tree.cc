#include "common/s3/xml_tree.h"

#include <expat.h>

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pocketmail::s3 {
namespace {

class TreeBuilder {
 public:
  TreeBuilder(XML_Parser parser, const XmlLimits& limits) : parser_(parser), limits_(limits) {}

  static void OnStart(void* self, const XML_Char* name, const XML_Char** /*attributes*/) {
    static_cast<TreeBuilder*>(self)->Start(name);
  }
  static void OnEnd(void* self, const XML_Char* /*name*/) {
    static_cast<TreeBuilder*>(self)->End();
  }
  static void OnText(void* self, const XML_Char* text, int len) {
    static_cast<TreeBuilder*>(self)->Text(absl::string_view(text, len));
  }
  static void OnDoctype(void* self, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    static_cast<TreeBuilder*>(self)->Fail("DOCTYPE is not allowed in an S3 response");
  }
  static void OnEntityDecl(void* self, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                           const XML_Char*, const XML_Char*, const XML_Char*) {
    static_cast<TreeBuilder*>(self)->Fail("entity declarations are not allowed");
  }
  static int OnExternalEntity(XML_Parser, const XML_Char*, const XML_Char*, const XML_Char*,
                              const XML_Char*) {
    return XML_STATUS_ERROR;  // never resolve external entities
  }

  const std::optional<std::string>& failure() const { return failure_; }
  std::optional<XmlElement> TakeRoot() { return std::move(root_); }

 private:
  void Start(absl::string_view qualified) {
    if (failure_) return;
    if (static_cast<int>(stack_.size()) >= limits_.max_depth) return Fail("XML nested too deeply");
    if (++elements_ > limits_.max_elements) return Fail("XML has too many elements");
    size_t colon = qualified.rfind(':');
    XmlElement element;
    element.name =
        std::string(colon == absl::string_view::npos ? qualified : qualified.substr(colon + 1));
    stack_.push_back(std::move(element));
  }

  void End() {
    if (failure_ || stack_.empty()) return;
    XmlElement done = std::move(stack_.back());
    stack_.pop_back();
    if (stack_.empty()) {
      root_ = std::move(done);
    } else {
      stack_.back().children.push_back(std::move(done));
    }
  }

  void Text(absl::string_view text) {
    if (failure_ || stack_.empty()) return;
    std::string& into = stack_.back().text;
    if (into.size() + text.size() > limits_.max_text_bytes) return Fail("XML text too long");
    into.append(text.data(), text.size());
  }

  void Fail(absl::string_view why) {
    if (!failure_) failure_ = std::string(why);
    XML_StopParser(parser_, XML_FALSE);
  }

  XML_Parser parser_;
  const XmlLimits& limits_;
  std::vector<XmlElement> stack_;
  std::optional<XmlElement> root_;
  size_t elements_ = 0;
  std::optional<std::string> failure_;
};

struct ParserDeleter {
  void operator()(XML_ParserStruct* p) const { XML_ParserFree(p); }
};

}  // namespace

const XmlElement* XmlElement::Child(absl::string_view child_name) const {
  for (const XmlElement& child : children) {
    if (child.name == child_name) return &child;
  }
  return nullptr;
}

int XmlElement::CountChildren(absl::string_view child_name) const {
  int n = 0;
  for (const XmlElement& child : children) n += child.name == child_name ? 1 : 0;
  return n;
}

absl::StatusOr<XmlElement> ParseXml(absl::string_view document, const XmlLimits& limits) {
  if (document.size() > limits.max_document_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("XML document of ", document.size(), " bytes is too large"));
  }
  std::unique_ptr<XML_ParserStruct, ParserDeleter> parser(XML_ParserCreate(nullptr));
  if (!parser) return absl::ResourceExhaustedError("cannot create an XML parser");
  XML_Parser p = parser.get();
  TreeBuilder builder(p, limits);
  XML_SetUserData(p, &builder);
  XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
  XML_SetElementHandler(p, &TreeBuilder::OnStart, &TreeBuilder::OnEnd);
  XML_SetCharacterDataHandler(p, &TreeBuilder::OnText);
  XML_SetStartDoctypeDeclHandler(p, &TreeBuilder::OnDoctype);
  XML_SetEntityDeclHandler(p, &TreeBuilder::OnEntityDecl);
  XML_SetExternalEntityRefHandler(p, &TreeBuilder::OnExternalEntity);
  XML_Status status =
      XML_Parse(p, document.data(), static_cast<int>(document.size()), /*isFinal=*/1);
  if (builder.failure()) return absl::InvalidArgumentError(*builder.failure());
  if (status != XML_STATUS_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed XML: ", XML_ErrorString(XML_GetErrorCode(p)), " at line ",
                     XML_GetCurrentLineNumber(p), " column ", XML_GetCurrentColumnNumber(p)));
  }
  std::optional<XmlElement> root = builder.TakeRoot();
  if (!root) return absl::InvalidArgumentError("XML has no root element");
  return *std::move(root);
}

}  // namespace pocketmail::s3
