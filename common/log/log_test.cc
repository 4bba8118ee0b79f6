#include "common/log/log.h"

#include "gtest/gtest.h"

namespace pocketmail::log {
namespace {

TEST(LogFormat, PlainValuesAreUnquoted) {
  EXPECT_EQ(FormatLine(Level::kInfo, "ledger", "started", {{"port", 5}}, "T"),
            "ts=T level=info svc=ledger msg=started port=5");
}

TEST(LogFormat, ValuesWithSpacesAreQuoted) {
  EXPECT_EQ(FormatLine(Level::kWarn, "fetcher", "pass failed", {{"error", "a b"}}, "T"),
            "ts=T level=warn svc=fetcher msg=\"pass failed\" error=\"a b\"");
}

TEST(LogFormat, HostileValueStaysOnOneLine) {
  std::string line = FormatLine(Level::kError, "router", "bad rcpt",
                                {{"to", std::string("x>\r\nRCPT TO:<y>\0z", 17)}}, "T");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_NE(line.find("\\r\\nRCPT"), std::string::npos);
  EXPECT_NE(line.find("\\x00z"), std::string::npos);
}

TEST(LogFormat, EmptyValueIsQuoted) {
  EXPECT_EQ(FormatLine(Level::kDebug, "s", "m", {{"k", ""}}, "T"),
            "ts=T level=debug svc=s msg=m k=\"\"");
}

}  // namespace
}  // namespace pocketmail::log
